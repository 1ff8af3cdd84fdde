"""``cirrus worker validate`` run as a user runs it: the installed console script, in a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_validate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cirrus worker validate ARGS`` with the worker variables cleared, plus ``env``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CIRRUS_WORKER_")}
    environ.update(env or {})
    return subprocess.run(
        [str(CIRRUS), "worker", "validate", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "worker.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("name: w\nsurprise-setting: 1\n", "surprise-setting"),
        (
            "standby:\n  isolation: {tart: {image: i}}\n  prewarm: true\n",
            "standby.prewarm",
        ),
        (
            "standby:\n  isolation: {tart: {image: i, nested: true}}\n",
            "standby.isolation.tart.nested",
        ),
        ("token: t\nupstreams: [{endpoint: 'https://a.example', token: u}]\n", "upstreams"),
        ("log: {rotate-size: banana}\n", "log.rotate-size"),
        ("log: {level: loud}\n", "log.level"),
        ("resources: {gpu: lots}\n", "resources.gpu"),
        (
            "security:\n  allowed-isolations:\n    tart:\n"
            "      allowed-volumes: [{force-readonly: true}]\n",
            "security.allowed-isolations.tart.allowed-volumes[0].source",
        ),
    ],
)
def test_a_bad_configuration_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    result = run_validate("-f", write(tmp_path, text))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"cirrus: configuration error: {key}: ")
    assert "Traceback" not in result.stderr


def test_the_upstreams_conflict_names_both_keys(tmp_path: Path) -> None:
    text = "upstreams: [{endpoint: 'https://a.example', token: u}]\n"
    result = run_validate("-f", write(tmp_path, text), "--token", "t")
    assert result.returncode == 2
    assert '"upstreams" and "token" are mutually exclusive' in result.stderr


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("--resources", "gpu=lots"), "--resources"),
        (("--labels", "no-equals-sign"), "--labels"),
        (("--rpc-endpoint", "localhost:8080"), "--rpc-endpoint"),
        (("-f", "/nonexistent/worker.yml"), "--file"),
    ],
)
def test_a_bad_flag_exits_2_with_one_line_naming_the_flag(args: tuple[str, ...], key: str) -> None:
    result = run_validate(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"cirrus: configuration error: {key}: ")
    assert "Traceback" not in result.stderr


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: w\nlabels: [a\n")
    result = run_validate("-f", path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert path in result.stderr
    assert "line 3" in result.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("worker*.yml")))
def test_every_example_validates_and_prints_its_configuration(example: str) -> None:
    result = run_validate("-f", str(EXAMPLES / example))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    printed = yaml.safe_load(result.stdout)
    written = yaml.safe_load((EXAMPLES / example).read_text(encoding="utf-8"))
    assert printed["name"] == written["name"]
    assert printed["labels"] == written.get("labels", {})
    assert printed["resources"] == written.get("resources", {})
    assert "security" in printed
    assert "allowed-isolations" in printed["security"]
    if "token" in written:
        assert written["token"] not in result.stdout


def test_the_printed_configuration_reflects_flags_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: from-file\nlabels: {a: file, b: file}\nresources: {cpu: 8}\n")
    result = run_validate(
        "-f",
        path,
        "--labels",
        "b=flag",
        "--resources",
        "gpu=0.5",
        "--token",
        "very-secret-token",
        env={"CIRRUS_WORKER_NAME": "from-env", "CIRRUS_WORKER_RPC_ENDPOINT": "http://env:9"},
    )
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["name"] == "from-env"
    assert printed["labels"] == {"a": "file", "b": "flag"}
    assert printed["resources"] == {"cpu": 8, "gpu": 0.5}
    assert printed["upstreams"] == [{"endpoint": "http://env:9", "token": "***"}]
    assert "very-secret-token" not in result.stdout


def test_the_security_section_is_printed_with_images_volumes_and_softnet() -> None:
    result = run_validate("-f", str(EXAMPLES / "worker-security.yml"))
    allowed = yaml.safe_load(result.stdout)["security"]["allowed-isolations"]
    assert set(allowed) == {"tart", "vetu"}
    assert allowed["tart"]["allowed-images"] == ["ghcr.io/cirruslabs/*"]
    assert allowed["tart"]["force-softnet"] is True
    assert allowed["tart"]["allowed-volumes"] == [
        {"source": "/Volumes/SSD/*", "force-readonly": False},
        {"source": "/var/src", "force-readonly": True},
    ]


def test_validate_ends_with_a_human_summary_of_the_policy_as_yaml_comments() -> None:
    result = run_validate("-f", str(EXAMPLES / "worker.yml"))
    assert result.returncode == 0, result.stderr
    comments = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert "# worker example-worker: http://127.0.0.1:8080" in comments
    assert any(
        line.startswith("# isolation tart: images ghcr.io/cirruslabs/*")
        and "/var/src (read-only)" in line
        and "Softnet forced" in line
        for line in comments
    )
    assert yaml.safe_load(result.stdout)["name"] == "example-worker"
