"""Black-box tests of ``cirrus run`` with ``container:`` tasks: the embedded worker runs them in
the local podman, as the original ``cirrus run`` ran them with docker or podman.

The image is the local busybox one built by ``scripts/setup-podman.sh`` (no registry is reached).
Each task proves where it ran: podman's ``/run/.containerenv`` exists, and a file made on the
host for this test does not.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.container_image import TEST_IMAGE, require_podman
from tests.integration.test_local_run import cirrus_run

pytestmark = pytest.mark.integration


@pytest.fixture
def host_marker(tmp_path: Path) -> Path:
    """A file that exists on the host only; podman is checked first (never skipped)."""
    require_podman()
    marker = tmp_path / f"host-only-{uuid.uuid4().hex[:8]}"
    marker.write_text("on the host\n")
    return marker


def container_build(marker: Path, token: str) -> str:
    """A build of one ``container:`` task (the instance given at the top level, as most real
    files do) that prints ``token`` only inside a container."""
    return f"""\
container:
  image: {TEST_IMAGE}
inside_task:
  env:
    TOKEN: {token}
  script:
    - test -e /run/.containerenv
    - test ! -e {marker}
    - echo "in-the-container $TOKEN"
    - busybox | head -n 1
"""


def test_cirrus_run_runs_a_container_task_in_the_local_podman(
    tmp_path: Path, host_marker: Path
) -> None:
    token = uuid.uuid4().hex[:12]
    (tmp_path / ".cirrus.yml").write_text(container_build(host_marker, token))

    result = cirrus_run(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"inside:main | in-the-container {token}" in result.stdout
    assert "inside:main | BusyBox v" in result.stdout
    assert "inside (task 1): COMPLETED" in result.stdout
    assert "build 1: COMPLETED" in result.stdout
    assert "Traceback" not in result.stderr


def test_cirrus_run_runs_container_tasks_even_when_the_worker_file_allows_only_none(
    tmp_path: Path, host_marker: Path
) -> None:
    # A worker file written for a shared pool: only the none isolation and one image pattern.
    worker_file = tmp_path / "worker.yml"
    worker_file.write_text(
        "security:\n"
        "  allowed-isolations:\n"
        "    none: {}\n"
        "    tart:\n"
        '      allowed-images: ["ghcr.io/cirruslabs/*"]\n'
    )
    token = uuid.uuid4().hex[:12]
    build = tmp_path / "build.yml"
    build.write_text(
        f"""\
inside_task:
  container:
    image: {TEST_IMAGE}
  script:
    - test ! -e {host_marker}
    - echo "in-the-container {token}"
on_host_task:
  script:
    - test -e {host_marker}
    - echo on-the-host
"""
    )

    result = cirrus_run(tmp_path, "--config", str(build), "-f", str(worker_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"inside:main | in-the-container {token}" in result.stdout
    assert "build 1: COMPLETED" in result.stdout
    assert "on_host:main | on-the-host" in result.stdout


def test_cirrus_run_runs_tasks_whose_instance_asks_for_other_labels_on_this_host(
    tmp_path: Path, host_marker: Path
) -> None:
    # Hosted Cirrus would want an arm64 machine and a worker labelled gpu=big; locally there is
    # one worker, this host, so both run here (in the local podman).
    build = tmp_path / "build.yml"
    build.write_text(
        f"""\
arm_task:
  arm_container:
    image: {TEST_IMAGE}
  script:
    - test ! -e {host_marker}
    - echo "arm-in-the-container"
labelled_task:
  persistent_worker:
    labels:
      gpu: big
    isolation:
      container:
        image: {TEST_IMAGE}
  script:
    - test ! -e {host_marker}
    - echo "labelled-in-the-container"
"""
    )

    result = cirrus_run(tmp_path, "--config", str(build))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "arm:main | arm-in-the-container" in result.stdout
    assert "labelled:main | labelled-in-the-container" in result.stdout
    assert "build 1: COMPLETED" in result.stdout
