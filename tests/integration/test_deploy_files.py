"""The deployment files under deploy/: systemd accepts the units, launchd's plist and the compose
file parse, and every command they start is a real ``cirrus`` command line."""

from __future__ import annotations

import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli_tree import check_cirrus_arguments

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("cirrus-worker.service", "cirrus-controller.service")
INSTALLED_BINARY = "/opt/cirrus/bin/cirrus"
SETUP_HINT = "run scripts/setup-ops-tools.sh (as root) first"


def unit_settings(name: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file (all sections), values in file order."""
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _equals, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def seconds(timespan: str) -> int:
    """A systemd time span of the forms the units use: ``30s``, ``10min``, ``2h``, ``90``."""
    units = {"h": 3600, "min": 60, "s": 1}
    for suffix, factor in units.items():
        if timespan.endswith(suffix):
            return int(timespan.removesuffix(suffix)) * factor
    return int(timespan)


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_accepts_the_unit(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail(f"systemd-analyze is not installed: {SETUP_HINT}")
    # verify insists that ExecStart's program exists: point it at this checkout's cirrus.
    cirrus = Path(sys.executable).with_name("cirrus")
    assert cirrus.is_file()
    text = (DEPLOY / name).read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    (tmp_path / name).write_text(text.replace(INSTALLED_BINARY, str(cirrus)), encoding="utf-8")

    result = subprocess.run(
        [analyze, "verify", "--man=no", "--generators=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    complaints = [line for line in result.stderr.splitlines() if name in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def test_systemd_analyze_verify_refuses_a_broken_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail(f"systemd-analyze is not installed: {SETUP_HINT}")
    broken = tmp_path / "broken.service"
    broken.write_text("[Service]\nExecStart=/nonexistent/cirrus worker run\n", encoding="utf-8")

    result = subprocess.run(
        [analyze, "verify", "--man=no", "--generators=no", str(broken)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode != 0


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_stops_with_one_sigterm_to_the_main_process_and_restarts_only_on_failure(
    name: str,
) -> None:
    settings = unit_settings(name)

    assert settings["KillSignal"] == ["SIGTERM"]
    assert settings["KillMode"] == ["mixed"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["RestartPreventExitStatus"] == ["2"]
    assert settings["User"] == ["cirrus"]


def test_the_worker_unit_leaves_at_least_an_hour_for_draining() -> None:
    settings = unit_settings("cirrus-worker.service")

    assert seconds(settings["TimeoutStopSec"][0]) >= 3600


@pytest.mark.parametrize(
    ("name", "command_path"),
    [
        ("cirrus-worker.service", "cirrus worker run"),
        ("cirrus-controller.service", "cirrus controller run"),
    ],
)
def test_the_units_exec_start_is_a_real_cirrus_command_with_a_config_file(
    name: str, command_path: str
) -> None:
    program, *arguments = shlex.split(unit_settings(name)["ExecStart"][0])

    assert program == INSTALLED_BINARY
    assert check_cirrus_arguments(arguments) == command_path
    assert arguments[arguments.index("-f") + 1].startswith("/etc/cirrus/")


def load_plist() -> dict[str, Any]:
    """The launchd job of deploy/."""
    with (DEPLOY / "org.cirruslabs.cirrus-worker.plist").open("rb") as plist:
        job = plistlib.load(plist)
    assert isinstance(job, dict)
    return job


def test_the_launchd_plist_parses_with_the_keys_launchd_needs() -> None:
    job = load_plist()

    assert job["Label"] == "org.cirruslabs.cirrus-worker"
    assert job["RunAtLoad"] is True
    assert job["KeepAlive"] == {"SuccessfulExit": False}
    assert job["LimitLoadToSessionType"] == "Aqua"
    assert job["ExitTimeOut"] >= 3600
    assert "/opt/homebrew/bin" in job["EnvironmentVariables"]["PATH"].split(":")


def test_the_launchd_job_runs_a_real_worker_command() -> None:
    program, *arguments = load_plist()["ProgramArguments"]

    assert program == INSTALLED_BINARY
    assert check_cirrus_arguments(arguments) == "cirrus worker run"


def test_the_launchd_plist_explains_the_local_network_privacy_of_macos_15() -> None:
    text = (DEPLOY / "org.cirruslabs.cirrus-worker.plist").read_text(encoding="utf-8")

    assert "macOS 15" in text
    assert "Local Network" in text


def load_compose() -> dict[str, Any]:
    """The compose file of deploy/."""
    document = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_the_compose_file_has_a_controller_postgresql_and_a_worker() -> None:
    services = load_compose()["services"]

    assert set(services) == {"controller", "postgres", "worker"}
    assert services["postgres"]["image"].startswith("docker.io/library/postgres:")
    assert services["controller"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["controller"]["condition"] == "service_healthy"


def test_the_compose_services_run_real_cirrus_commands_wired_to_each_other() -> None:
    services = load_compose()["services"]
    controller = services["controller"]["command"]
    worker = services["worker"]["command"]

    assert check_cirrus_arguments(controller) == "cirrus controller run"
    assert check_cirrus_arguments(worker) == "cirrus worker run"
    database = controller[controller.index("--database") + 1]
    assert database.startswith("postgresql://")
    assert "@postgres:5432/" in database
    assert services["worker"]["environment"]["CIRRUS_WORKER_RPC_ENDPOINT"] == (
        "http://controller:8080"
    )


def test_the_compose_worker_gets_time_to_drain() -> None:
    worker = load_compose()["services"]["worker"]

    assert worker["stop_signal"] == "SIGTERM"
    assert seconds(worker["stop_grace_period"]) >= 3600
