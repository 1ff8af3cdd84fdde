"""Helpers for the container tests: the local busybox image and podman queries.

The image ``localhost/cirrus-test-busybox:latest`` is built by ``scripts/setup-podman.sh``; the
tests never reach a registry.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

TEST_IMAGE = "localhost/cirrus-test-busybox:latest"
SETUP_HINT = "run scripts/setup-podman.sh (as root) first"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``podman args...`` and return what it printed."""
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, timeout=60
    )


def require_podman() -> None:
    """Fail the calling test when podman or the test image is missing (never skip: the test
    command installs both, so a missing one is a broken setup, not an excuse)."""
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed: {SETUP_HINT}")
    if podman("image", "exists", TEST_IMAGE, check=False).returncode != 0:
        pytest.fail(f"image {TEST_IMAGE} is missing: {SETUP_HINT}")


def containers_labelled(label: str) -> list[str]:
    """Ids of every container (running or not) carrying ``label`` (``key`` or ``key=value``)."""
    listed = podman("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={label}")
    return listed.stdout.split()


def container_exists(name_or_id: str) -> bool:
    """Whether a container of that name or id exists."""
    return podman("container", "exists", name_or_id, check=False).returncode == 0


def remove_labelled(label: str) -> None:
    """Force-remove every container carrying ``label``."""
    ids = containers_labelled(label)
    if ids:
        podman("rm", "--force", "--volumes", "--time", "0", *ids, check=False)


def inspect(name_or_id: str) -> dict[str, Any]:
    """``podman inspect`` of one container."""
    data = json.loads(podman("inspect", name_or_id).stdout)
    assert isinstance(data, list)
    assert len(data) == 1
    entry = data[0]
    assert isinstance(entry, dict)
    return entry


def start_sleeper(name: str, labels: dict[str, str]) -> str:
    """Start a container that only sleeps, with ``labels``; return its id."""
    label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    started = podman(
        "run",
        "--detach",
        "--init",
        "--network",
        "none",
        "--name",
        name,
        *label_args,
        "--entrypoint",
        "sleep",
        TEST_IMAGE,
        "infinity",
    )
    return started.stdout.strip()
