"""The Dockerfile builds for real with podman, and the image runs both roles.

No image registry is reachable here, so the base image is a local stand-in of the same name
(``scripts/build-base-standin.sh``: Debian's python3 and tini on a debootstrap tree, built once
and cached). The build itself reaches PyPI (``--network=host``); when the host verifies TLS with
its own CA bundle (an intercepting proxy), that bundle is lent to pip for the build stage only.
Everything the tests start runs with ``--network=none``, or binds 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.version import version

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STANDIN_SCRIPT = REPO / "scripts" / "build-base-standin.sh"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUN_ID = uuid.uuid4().hex[:12]
LABEL = f"cirrus-docker-image-test={RUN_ID}"
IMAGE_USER = "10001:10001"
BUILD_TIMEOUT_SECONDS = 600
REGISTRATION_TOKEN = "image-test-registration-token"


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``podman args...`` and return what it printed (no check: callers assert)."""
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def wait_for(condition_met: Callable[[], bool], what: str, deadline_seconds: float = 30.0) -> None:
    """Poll ``condition_met()`` until it is true; fail naming ``what`` after the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while not condition_met():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_seconds:.0f} s waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The project's image, built from this checkout; removed afterwards (layers stay cached)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run scripts/setup-podman.sh (as root) first")
    standin = subprocess.run(
        ["sh", str(STANDIN_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    if standin.returncode != 0:
        pytest.fail(f"{STANDIN_SCRIPT.name} failed:\n{standin.stderr[-3000:]}")
    tag = f"localhost/cirrus-worker-image-test:{RUN_ID}"
    build = ["build", "--pull=never", "--network=host", "--quiet", "--tag", tag]
    if HOST_CA_BUNDLE.is_file():
        build += [
            "--build-arg",
            "PIP_CERT=/run/host-ca.crt",
            "--volume",
            f"{HOST_CA_BUNDLE}:/run/host-ca.crt:ro",
        ]
    built = podman(*build, str(REPO), timeout=BUILD_TIMEOUT_SECONDS)
    if built.returncode != 0:
        pytest.fail(f"podman build failed:\n{built.stderr[-5000:]}")
    try:
        yield tag
    finally:
        ids = podman("ps", "--all", "--quiet", "--filter", f"label={LABEL}").stdout.split()
        if ids:
            podman("rm", "--force", "--time", "0", *ids)
        podman("rmi", "--force", tag)


def start_detached(image: str, network: str, *args: str) -> str:
    """Start a labelled container of ``image`` in the background; return its id."""
    started = podman(
        "run",
        "--detach",
        "--label",
        LABEL,
        f"--network={network}",
        "--env",
        "OTEL_SDK_DISABLED=true",
        image,
        *args,
    )
    assert started.returncode == 0, started.stderr
    return started.stdout.strip()


def logs(container: str) -> str:
    """Everything the container wrote so far, stdout and stderr."""
    result = podman("logs", container)
    return result.stdout + result.stderr


def stop_with_sigterm(container: str) -> int:
    """Send one SIGTERM (through tini) and return the container's exit code."""
    assert podman("kill", "--signal", "TERM", container).returncode == 0
    waited = podman("wait", container, timeout=60)
    assert waited.returncode == 0, waited.stderr
    return int(waited.stdout.strip())


def test_the_image_prints_the_projects_version(image: str) -> None:
    result = podman("run", "--rm", "--network=none", image, "--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"cirrus {version()}\n"


def test_the_image_runs_cirrus_under_tini_as_a_numeric_non_root_user(image: str) -> None:
    inspected = podman(
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}",
        image,
    )
    user = podman("run", "--rm", "--network=none", "--entrypoint", "id", image, "-u")

    assert inspected.stdout.strip() == f'{IMAGE_USER}|["tini","--","cirrus"]|["worker","run"]'
    assert user.stdout.strip() == "10001"


def test_cirrus_run_completes_the_example_build_inside_the_image_without_a_network(
    image: str, tmp_path: Path
) -> None:
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    shutil.copy(REPO / "examples" / ".cirrus.yml", build_dir / ".cirrus.yml")
    build_dir.chmod(0o755)  # readable by the image's user, not only by root
    (build_dir / ".cirrus.yml").chmod(0o644)

    result = podman(
        "run",
        "--rm",
        "--label",
        LABEL,
        "--network=none",
        "--volume",
        f"{build_dir}:/build:ro",
        "--workdir",
        "/build",
        image,
        "run",
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "build 1: COMPLETED" in result.stdout
    assert "package:main | artifact" in result.stdout


def test_a_worker_in_the_image_drains_and_exits_0_on_the_first_sigterm(image: str) -> None:
    container = start_detached(
        image,
        "none",
        "worker",
        "run",
        "--name",
        "image-test-worker",
        "--token",
        REGISTRATION_TOKEN,
        "--rpc-endpoint",
        "http://127.0.0.1:9",
    )
    wait_for(lambda: "retrying" in logs(container), "the worker's first registration attempt")
    pid1 = podman("exec", container, "cat", "/proc/1/comm")

    code = stop_with_sigterm(container)

    assert pid1.stdout.strip() == "tini"
    assert code == 0, logs(container)
    assert "draining" in logs(container)


def test_a_controller_in_the_image_serves_on_loopback_and_stops_on_sigterm(image: str) -> None:
    port = free_port()
    container = start_detached(
        image,
        "host",
        "controller",
        "run",
        "--listen",
        f"127.0.0.1:{port}",
        "--database",
        "sqlite:////var/lib/cirrus/controller.db",
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, "the controller's /healthz")
    code = stop_with_sigterm(container)

    assert code == 0, logs(container)
    assert "registration token (for workers' --token)" in logs(container)
