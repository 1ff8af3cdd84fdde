"""Black-box tests of ``cirrus run``: the embedded controller and worker run a real build.

Each run is a subprocess in its own session; afterwards nothing may be left in that session
(the worker's task processes included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest

from tests.integration.child_environment import child_environment

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT = 120.0

FAILING_BUILD = """\
check_task:
  script:
    - echo "checking"
    - exit 1
  on_failure:
    explain_script: echo "check failed"
publish_task:
  depends_on: check
  script: echo "never published"
"""


def session_processes(session_id: int) -> list[psutil.Process]:
    """Live processes of a session (zombies excluded)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getsid(proc.pid) == session_id and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def cirrus_run(
    cwd: Path, *args: str, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cirrus run ARGS`` in ``cwd``; assert that it leaves no process behind."""
    env = {**child_environment(), **(extra_env or {})}
    process = subprocess.Popen(
        [str(CIRRUS), "run", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        raise AssertionError(f"cirrus run did not finish:\n{stdout}\n{stderr}") from None
    finally:
        left = session_processes(process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    assert left == [], f"left running: {left}"
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_example_build_completes_with_every_tasks_logs(tmp_path: Path) -> None:
    result = cirrus_run(tmp_path, "--config", str(EXAMPLES / ".cirrus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "lint:check | hello from " in out
    assert "unit_test:test | running the unit suite" in out
    assert "unit_test:cleanup | cleaned up" in out
    assert "package:main | packaging after lint and unit_test" in out
    for task in ("lint", "unit_test", "package"):
        assert f"\n{task} (task " in out
    assert out.index("lint (task 1): COMPLETED") < out.index("package:main | packaging")
    assert "unit_test:report" not in out  # on_failure does not run after success
    assert out.rstrip().splitlines()[-1] == "build 1: COMPLETED"


def test_the_cirrus_yml_of_the_current_directory_is_the_default(tmp_path: Path) -> None:
    (tmp_path / ".cirrus.yml").write_text(FAILING_BUILD)
    result = cirrus_run(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "check:main | checking" in result.stdout
    assert "check:explain | check failed" in result.stdout
    assert "publish (task 2): SKIPPED" in result.stdout
    assert "never published" not in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "build 1: FAILED"


def test_a_task_that_runs_out_of_its_timeout_fails_as_timed_out(tmp_path: Path) -> None:
    (tmp_path / ".cirrus.yml").write_text(
        "task:\n  name: slow\n  timeout_in: 2s\n  script: sleep 60\n"
        "  always:\n    note_script: echo still noted\n"
    )
    result = cirrus_run(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'slow (task 1): FAILED: timed out after 2 s (command "main" was aborted)' in (
        result.stdout
    )
    assert "slow:note | still noted" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "build 1: FAILED"


def test_a_bad_cirrus_yml_is_exit_2_with_the_controllers_error_on_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.yml").write_text("lint_task:\n  timeout_in: soon\n  script: x\n")
    result = cirrus_run(tmp_path, "--config", "bad.yml")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert '"timeout_in" must be' in result.stderr


def test_a_missing_cirrus_yml_is_exit_2(tmp_path: Path) -> None:
    result = cirrus_run(tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("cirrus: cannot read .cirrus.yml")


def test_a_bad_worker_file_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "worker.yml").write_text("resources: {cpu: lots}\n")
    result = cirrus_run(tmp_path, "--config", str(EXAMPLES / ".cirrus.yml"), "-f", "worker.yml")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "resources.cpu" in result.stderr


def test_a_worker_file_with_resources_serves_tasks_that_need_them(tmp_path: Path) -> None:
    (tmp_path / "worker.yml").write_text("resources: {slots: 2}\n")
    (tmp_path / ".cirrus.yml").write_text(
        "task:\n  persistent_worker:\n    resources: {slots: 1}\n  script: echo with a slot\n"
    )
    result = cirrus_run(tmp_path, "-f", "worker.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "main:main | with a slot" in result.stdout
