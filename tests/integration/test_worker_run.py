"""Black-box tests of ``cirrus worker run``: the real executable against the fake controller.

Each test writes a worker config file, starts the console script next to ``sys.executable`` as a
subprocess (in its own session, so that teardown can kill whatever it left behind) and watches
the calls the fake controller records. Only the contract of ``spec/PROTOCOL.md`` and
``spec/CLI.md`` is assumed, never the worker's internals.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.integration.child_environment import child_environment
from tests.integration.fake_controller import Call, FakeController, FakeTask, script

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")
GRACE_SECONDS = 10  # the default cancellation grace of PROTOCOL.md
BACKOFF_CAP_SECONDS = 15
GO_OS = {"linux": "linux", "darwin": "darwin", "win32": "windows"}
GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
NOT_ALLOWED = '"none" isolation is not allowed by this Persistent Worker\'s security settings'


class WorkerProcess:
    """A ``cirrus worker run`` subprocess with its output captured in files."""

    def __init__(self, tmp_path: Path, controller: FakeController) -> None:
        self.tmp_path = tmp_path
        self.controller = controller
        self.name = "e2e-" + uuid.uuid4().hex[:8]
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout_path = tmp_path / "worker.stdout"
        self.stderr_path = tmp_path / "worker.stderr"

    def config(self, **overrides: Any) -> dict[str, Any]:
        """A minimal worker config pointing at the fake controller, with ``overrides`` merged."""
        base: dict[str, Any] = {
            "name": self.name,
            "token": self.controller.registration_token,
            "rpc": {"endpoint": self.controller.url},
            "labels": {"team": "e2e", "connected-device": "none"},
            "resources": {"slots": 2},
            "log": {"level": "debug"},
        }
        base.update(overrides)
        return base

    def start(self, config: dict[str, Any] | None = None, *args: str) -> WorkerProcess:
        """Write the config file and start the worker."""
        config_path = self.tmp_path / "worker.yml"
        config_path.write_text(yaml.safe_dump(config if config is not None else self.config()))
        work_tmp = self.tmp_path / "tmp"
        work_tmp.mkdir(exist_ok=True)
        env = child_environment()
        env["TMPDIR"] = str(work_tmp)
        # As in a login session: CI machines may start the suite without SHELL, and what
        # the worker tells scripts about their shell depends on whether it has one.
        env.setdefault("SHELL", "/bin/sh")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(CIRRUS), "worker", "run", "-f", str(config_path), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        """The worker's process id."""
        assert self.process is not None
        return self.process.pid

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the worker process itself (as a service manager would)."""
        assert self.process is not None
        self.process.send_signal(sig)

    def running(self) -> bool:
        """Whether the worker has not exited yet."""
        return self.process is not None and self.process.poll() is None

    def exited_early(self) -> str | None:
        """Why waiting for the controller is pointless: the worker is gone (with its stderr)."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"worker exited with {self.process.returncode}; stderr:\n{self.stderr()[-3000:]}"

    def wait_exit(self, timeout: float) -> int:
        """The worker's exit code; fails the test if it has not exited within ``timeout``."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker still running after {timeout}s; {self.controller.summary()}\n"
                f"stderr tail:\n{self.stderr()[-3000:]}"
            ) from None

    def stderr(self) -> str:
        """Everything the worker wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        """Everything the worker wrote to stdout and stderr so far."""
        return self.stdout_path.read_text(errors="replace") + self.stderr()

    def kill(self) -> None:
        """Kill the worker and everything in its session (teardown)."""
        if self.process is None:
            return
        # The whole group, also when the worker itself is gone but left children behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def worker(tmp_path: Path, fake_controller: FakeController) -> Iterator[WorkerProcess]:
    """A not yet started worker bound to the fake controller; killed at teardown."""
    if not CIRRUS.exists():
        pytest.fail(f"console script {CIRRUS} is not installed")
    process = WorkerProcess(tmp_path, fake_controller)
    fake_controller.give_up_check = process.exited_early
    try:
        yield process
    finally:
        fake_controller.give_up_check = None
        process.kill()


@pytest.fixture
def sleep_marker() -> Iterator[str]:
    """A unique ``sleep`` duration, so the test can find (and finally kill) its processes."""
    duration = f"{3000 + uuid.uuid4().int % 5000}.{uuid.uuid4().int % 1000:03d}"
    yield duration
    for proc in sleeps_of(duration):
        proc.kill()


def sleeps_of(duration: str) -> list[psutil.Process]:
    """Live (not zombie) ``sleep <duration>`` processes."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if (
            len(cmdline) >= 2
            and Path(cmdline[0]).name == "sleep"
            and cmdline[1] == duration
            and proc.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(proc)
    return found


def new_task(*commands: dict[str, Any], **fields: Any) -> FakeTask:
    """A none-isolated task with a unique id."""
    return FakeTask("task-" + uuid.uuid4().hex[:10], list(commands), **fields)


def task_stopped(controller: FakeController, task_id: str, timeout: float) -> FakeTask:
    """Wait for ``TaskStopped`` of ``task_id`` and return what the controller knows."""
    controller.wait_for(
        lambda: controller.task(task_id).stopped, timeout, f"TaskStopped of {task_id}"
    )
    return controller.task(task_id)


def reported_statuses(task: FakeTask) -> dict[str, str]:
    """Final command statuses: ``ReportAgentFinished`` if sent, else the last command updates.

    PROTOCOL.md requires ``ReportAgentFinished`` after commands that ran to their end; for a
    cancelled task it only requires the ABORTED/SKIPPED results, which may come as updates.
    When both exist they must agree.
    """
    finished = task.final_statuses()
    updates = task.latest_update_statuses()
    for name, status in updates.items():
        if name in finished:
            assert status == finished[name], f"{name}: update {status}, finished {finished[name]}"
    return finished or updates


def first_call_at(calls: list[Call]) -> float:
    """Time of the first of ``calls`` (which must not be empty)."""
    assert calls, "expected at least one call"
    return calls[0].at


def task_calls(controller: FakeController, method: str, task_id: str) -> list[Call]:
    """Successful task-scoped calls of ``method`` for ``task_id``."""
    return [
        c
        for c in controller.successful_calls(method)
        if c.headers.get("org.cirruslabs.task-id") == task_id
    ]


def assert_clean_run(controller: FakeController, worker: WorkerProcess) -> None:
    """No contract violation, no refused credentials and no traceback in the worker output."""
    assert controller.violations == []
    assert controller.auth_failures == []
    assert "Traceback" not in worker.output()


# --- registration ----------------------------------------------------------------------------


def test_the_worker_registers_with_reserved_and_configured_labels_and_polls(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    worker.start()
    register = fake_controller.wait_for_call("Register", timeout=20)
    fake_controller.wait_for(
        lambda: len(fake_controller.successful_calls("Poll")) >= 2, 20, "two polls"
    )

    info = register.body["workerInfo"]
    labels = info["labels"]
    assert labels["name"] == worker.name
    assert labels["hostname"] == socket.gethostname()
    assert labels["os"] == GO_OS[sys.platform]
    assert labels["arch"] == GO_ARCH[platform.machine().lower()]
    assert labels["version"]
    assert labels["team"] == "e2e"
    assert labels["connected-device"] == "none"
    assert {k: float(v) for k, v in info["resourcesTotal"].items()} == {"slots": 2.0}
    assert "registration-token" not in register.headers
    poll = fake_controller.successful_calls("Poll")[-1]
    assert poll.headers["worker-name"] == worker.name
    assert poll.body["workerInfo"]["labels"]["name"] == worker.name
    assert worker.running()
    assert_clean_run(fake_controller, worker)


@pytest.mark.parametrize("refusal", ["unauthenticated", "permission_denied"])
def test_a_wrong_registration_token_is_retried_without_exiting(
    worker: WorkerProcess, fake_controller: FakeController, refusal: str
) -> None:
    fake_controller.wrong_token_code = refusal
    worker.start(worker.config(token="not-the-token"))

    fake_controller.wait_for(
        lambda: len(fake_controller.calls("Register")) >= 3, 20, "three registration attempts"
    )
    assert all(c.status in (401, 403) for c in fake_controller.calls("Register"))
    assert fake_controller.successful_calls("Poll") == []
    assert worker.running()
    assert "Traceback" not in worker.output()
    assert "not-the-token" not in worker.output()

    worker.send(signal.SIGTERM)
    assert worker.wait_exit(20) == 0


def test_a_lost_session_makes_the_worker_register_again(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    worker.start()
    fake_controller.wait_for_call("Poll", timeout=20)
    fake_controller.invalidate_sessions()
    lost_at = time.monotonic()

    fake_controller.wait_for_call("Register", after=lost_at, timeout=20)
    fake_controller.wait_for_call("Poll", after=lost_at, timeout=20)
    assert worker.running()
    assert "Traceback" not in worker.output()


# --- running a none task -----------------------------------------------------------------------


def test_a_none_task_runs_its_commands_by_behaviour_and_reports_everything(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex[:8]
    task = fake_controller.queue_task(
        new_task(
            script(
                "ok",
                'echo "value=$MY_VAR"',
                'echo "task=$CIRRUS_TASK_ID ci=$CI cirrus_ci=$CIRRUS_CI"',
                'echo "secret=$MY_SECRET"',
                'test "$(pwd -P)" = "$(cd "$CIRRUS_WORKING_DIR" && pwd -P)" && echo cwd-is-workdir',
            ),
            script("broken", "echo before-failure", "exit 3", "echo after-exit-in-same-script"),
            script("skipped", "echo should-not-run"),
            script("on_failure", "echo on-failure-ran", behaviour="ON_FAILURE"),
            script("always", "echo always-ran", behaviour="ALWAYS"),
            environment={"MY_VAR": "hello-from-env", "MY_SECRET": secret},
            secrets_to_mask=[secret],
            resources_to_use={"slots": 1},
        )
    )
    worker.start()
    done = task_stopped(fake_controller, task.task_id, timeout=60)

    expected = {
        "ok": "COMPLETED",
        "broken": "FAILED",
        "skipped": "SKIPPED",
        "on_failure": "COMPLETED",
        "always": "COMPLETED",
    }
    assert done.final_statuses() == expected
    reported = done.latest_update_statuses()
    assert {k: v for k, v in reported.items() if k in expected} == {
        k: v for k, v in expected.items() if k in reported
    }
    assert done.started == 1
    assert done.failures == []
    assert done.stopped == 1

    ok_log = done.log_text("ok")
    assert "value=hello-from-env" in ok_log
    assert f"task={task.task_id} ci=true cirrus_ci=true" in ok_log
    assert "secret=HIDDEN-BY-CIRRUS-CI" in ok_log
    assert "cwd-is-workdir" in ok_log
    assert "before-failure" in done.log_text("broken")
    assert "after-exit-in-same-script" not in done.log_text("broken")
    assert "should-not-run" not in done.log_text()
    assert "on-failure-ran" in done.log_text("on_failure")
    assert "always-ran" in done.log_text("always")
    assert secret not in done.log_text()

    # Order of work (PROTOCOL.md): TaskStarted, InitialCommands, commands, finished, stopped.
    started = first_call_at(task_calls(fake_controller, "TaskStarted", task.task_id))
    initial = first_call_at(task_calls(fake_controller, "InitialCommands", task.task_id))
    finished = first_call_at(task_calls(fake_controller, "ReportAgentFinished", task.task_id))
    stopped = first_call_at(task_calls(fake_controller, "TaskStopped", task.task_id))
    assert started <= initial <= finished <= stopped
    for call in task_calls(fake_controller, "AppendLogs", task.task_id):
        assert call.at <= stopped

    # While it ran, polls listed it and its resources; after TaskStopped they do not.
    polls = fake_controller.successful_calls("Poll")
    during = [p for p in polls if initial <= p.received <= finished]
    for poll in during:
        assert task.task_id in poll.body.get("runningTasks", [])
        assert float(poll.body.get("resourcesInUse", {}).get("slots", 0)) == 1.0
    later = fake_controller.wait_for_call("Poll", after=stopped + 0.001, timeout=20)
    assert task.task_id not in later.body.get("runningTasks", [])

    assert worker.running()
    assert secret not in worker.output()
    assert task.client_secret not in worker.output()
    assert fake_controller.registration_token not in worker.output()
    assert_clean_run(fake_controller, worker)


def test_tasks_to_stop_kills_the_whole_process_tree_and_reports_aborted(
    worker: WorkerProcess, fake_controller: FakeController, sleep_marker: str
) -> None:
    task = fake_controller.queue_task(
        new_task(
            script(
                "long",
                "echo started-long",
                f"sh -c 'sleep {sleep_marker} & sleep {sleep_marker}; wait' &",
                f"sleep {sleep_marker}",
            ),
            script("after", "echo must-not-run"),
            script("always", "echo always-must-not-run", behaviour="ALWAYS"),
        )
    )
    worker.start()
    fake_controller.wait_for(
        lambda: len(sleeps_of(sleep_marker)) >= 3, 40, "the task's three sleep processes"
    )
    stop_requested = time.monotonic()
    fake_controller.stop_task(task.task_id)

    done = task_stopped(fake_controller, task.task_id, timeout=GRACE_SECONDS + 15)
    assert time.monotonic() - stop_requested <= GRACE_SECONDS + 15
    assert reported_statuses(done) == {"long": "ABORTED", "after": "SKIPPED", "always": "SKIPPED"}
    assert done.failures == []
    assert done.stopped == 1
    assert "started-long" in done.log_text("long")
    # TaskStopped means the instance is cleaned up: nothing the command started may survive.
    fake_controller.wait_for(
        lambda: not sleeps_of(sleep_marker), 2, "every sleep of the task to be gone"
    )
    assert worker.running()
    assert_clean_run(fake_controller, worker)


def test_a_task_timeout_aborts_the_running_command_and_runs_on_timeout_commands(
    worker: WorkerProcess, fake_controller: FakeController, sleep_marker: str
) -> None:
    task = fake_controller.queue_task(
        new_task(
            script("slow", f"sleep {sleep_marker}"),
            script("next", "echo must-not-run"),
            script("on_failure", "echo on-failure-must-not-run", behaviour="ON_FAILURE"),
            script("on_timeout", "echo on-timeout-ran", behaviour="ON_TIMEOUT"),
            script("always", "echo always-ran", behaviour="ALWAYS"),
            timeout_in_seconds=3,
        )
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, timeout=60)
    assert done.final_statuses() == {
        "slow": "ABORTED",
        "next": "SKIPPED",
        "on_failure": "SKIPPED",
        "on_timeout": "COMPLETED",
        "always": "COMPLETED",
    }
    assert "on-timeout-ran" in done.log_text("on_timeout")
    assert "always-ran" in done.log_text("always")
    assert "must-not-run" not in done.log_text()
    assert done.failures == []
    assert not sleeps_of(sleep_marker)
    assert_clean_run(fake_controller, worker)


def test_an_isolation_the_security_settings_forbid_is_failed_then_stopped(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task = fake_controller.queue_task(new_task(script("main", "echo must-not-run")))
    worker.start(worker.config(security={"allowed-isolations": {}}))

    done = task_stopped(fake_controller, task.task_id, timeout=30)
    assert len(done.failures) == 1
    assert NOT_ALLOWED in done.failures[0]
    assert done.started == 0
    assert done.initial_commands_calls == 0
    failed = first_call_at(task_calls(fake_controller, "TaskFailed", task.task_id))
    stopped = first_call_at(task_calls(fake_controller, "TaskStopped", task.task_id))
    assert failed <= stopped
    later = fake_controller.wait_for_call("Poll", after=stopped + 0.001, timeout=20)
    assert task.task_id not in later.body.get("runningTasks", [])
    assert worker.running()
    assert_clean_run(fake_controller, worker)


def test_reports_made_during_a_controller_outage_arrive_after_it(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    finished_marker = tmp_path / "task-finished"
    task = fake_controller.queue_task(
        new_task(
            script(
                "main",
                "echo first-line",
                "sleep 2",
                "echo last-line",
                f"touch '{finished_marker}'",
            ),
            script("always", "echo always-ran", behaviour="ALWAYS"),
        )
    )
    worker.start()
    fake_controller.wait_for_call("InitialCommands", timeout=30)

    outage_seconds = 30
    with fake_controller.outage():
        outage_began = time.monotonic()
        fake_controller.wait_for(finished_marker.exists, 20, "the task to finish its script")
        # The outage lasts its full scripted length, whatever the worker does meanwhile.
        fake_controller.wait_for(
            lambda: time.monotonic() - outage_began >= outage_seconds,
            outage_seconds + 1,
            "the end of the scripted outage",
        )
    outage_ended = time.monotonic()
    refused = [c for c in fake_controller.calls() if c.status == 503]
    assert any(c.method == "Poll" for c in refused)
    assert worker.running()

    done = task_stopped(fake_controller, task.task_id, timeout=BACKOFF_CAP_SECONDS + 20)
    assert done.stopped_at is not None
    assert done.stopped_at >= outage_ended
    assert done.final_statuses() == {"main": "COMPLETED", "always": "COMPLETED"}
    assert "first-line" in done.log_text("main")
    assert "last-line" in done.log_text("main")
    assert "always-ran" in done.log_text("always")
    assert done.failures == []
    assert done.stopped == 1
    fake_controller.wait_for_call("Poll", after=outage_ended, timeout=BACKOFF_CAP_SECONDS + 5)
    assert fake_controller.violations == []
    assert "Traceback" not in worker.output()


# --- signals, ephemeral, shutdown ------------------------------------------------------------


def test_a_first_sigterm_drains_lets_the_running_task_finish_and_exits_zero(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    task = fake_controller.queue_task(
        new_task(
            script(
                "main",
                "echo waiting",
                f"while [ ! -e '{go_on}' ]; do sleep 0.1; done",
                "echo drained-and-finished",
            )
        )
    )
    worker.start()
    fake_controller.wait_for_call("InitialCommands", timeout=30)
    worker.send(signal.SIGTERM)
    fake_controller.wait_for_call(
        "UpdateStatus", lambda c: c.body.get("disabled") is True, timeout=20
    )

    # A draining worker refuses new work (PROTOCOL.md) while the running task goes on.
    refused = fake_controller.queue_task(new_task(script("main", "echo must-not-run")))
    refused_done = task_stopped(fake_controller, refused.task_id, timeout=20)
    assert refused_done.failures == [
        f"worker {worker.name} is shutting down and accepts no new tasks"
    ]
    assert refused_done.started == 0
    assert worker.running()
    go_on.touch()

    assert worker.wait_exit(30) == 0
    done = fake_controller.task(task.task_id)
    assert done.final_statuses() == {"main": "COMPLETED"}
    assert "drained-and-finished" in done.log_text("main")
    assert done.stopped == 1
    assert done.failures == []
    assert_clean_run(fake_controller, worker)


def test_a_second_sigterm_cancels_the_running_task_and_exits_zero(
    worker: WorkerProcess, fake_controller: FakeController, sleep_marker: str
) -> None:
    task = fake_controller.queue_task(
        new_task(
            script("main", f"sleep {sleep_marker}"),
            script("always", "echo always-must-not-run", behaviour="ALWAYS"),
        )
    )
    worker.start()
    fake_controller.wait_for(lambda: sleeps_of(sleep_marker), 30, "the task's sleep")
    worker.send(signal.SIGTERM)
    fake_controller.wait_for_call(
        "UpdateStatus", lambda c: c.body.get("disabled") is True, timeout=20
    )
    worker.send(signal.SIGTERM)

    assert worker.wait_exit(GRACE_SECONDS + 20) == 0
    done = fake_controller.task(task.task_id)
    assert reported_statuses(done) == {"main": "ABORTED", "always": "SKIPPED"}
    assert done.stopped == 1
    assert done.failures == []
    assert not sleeps_of(sleep_marker)
    assert_clean_run(fake_controller, worker)


def test_an_ephemeral_worker_exits_zero_after_one_task(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task = fake_controller.queue_task(new_task(script("main", "echo only-task")))
    worker.start(None, "--ephemeral")

    assert worker.wait_exit(60) == 0
    done = fake_controller.task(task.task_id)
    assert done.final_statuses() == {"main": "COMPLETED"}
    assert "only-task" in done.log_text("main")
    assert done.stopped == 1
    assert_clean_run(fake_controller, worker)


def test_a_shutdown_answer_makes_the_worker_exit_zero(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    worker.start()
    fake_controller.wait_for_call("Poll", timeout=20)
    fake_controller.request_shutdown()

    assert worker.wait_exit(30) == 0
    assert_clean_run(fake_controller, worker)


# --- logging -----------------------------------------------------------------------------------


def test_the_worker_log_file_rotates_keeping_at_most_max_rotations_files(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    log_file = tmp_path / "logs" / "worker.log"
    log_file.parent.mkdir()
    rotated_2 = log_file.with_name("worker.log.2")
    worker.start(
        worker.config(
            log={"level": "debug", "file": str(log_file), "rotate-size": "2 KB", "max-rotations": 2}
        )
    )
    queued: list[FakeTask] = []

    def keep_busy_until(predicate_met: bool) -> bool:
        # Trivial tasks make the worker log more than idle polls alone would.
        if predicate_met:
            return True
        if not queued or fake_controller.task(queued[-1].task_id).stopped:
            queued.append(fake_controller.queue_task(new_task(script("main", "echo x"))))
        return False

    fake_controller.wait_for(lambda: keep_busy_until(rotated_2.exists()), 90, "worker.log.2")
    first_generation = rotated_2.read_bytes()
    fake_controller.wait_for(
        lambda: keep_busy_until(rotated_2.exists() and rotated_2.read_bytes() != first_generation),
        90,
        "one more rotation after worker.log.2 existed",
    )

    names = sorted(p.name for p in log_file.parent.iterdir())
    assert names == ["worker.log", "worker.log.1", "worker.log.2"]
    for name in names[1:]:
        assert 0 < (log_file.parent / name).stat().st_size <= 2000
    assert fake_controller.registration_token not in "".join(
        (log_file.parent / n).read_text(errors="replace") for n in names
    )
    # Logging to a file means not logging to the terminal.
    assert "DEBUG" not in worker.stderr()
    assert "INFO" not in worker.stderr()
    assert worker.running()
