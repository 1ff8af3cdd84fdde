"""More black-box tests of the ``cirrus`` worker commands: the real executable, fake controllers.

``worker pause``/``resume`` (and ``pause --wait``), the third termination signal, several
upstreams, a task printing 200 MB, the file, background, exit and unimplemented instructions,
a task id delivered twice, and a task id that is not a number. Only ``spec/PROTOCOL.md`` and
``spec/CLI.md`` are assumed; the helpers come from ``test_worker_run``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from tests.integration.child_environment import child_environment
from tests.integration.fake_controller import (
    Call,
    FakeController,
    FakeTask,
    ScriptedController,
    background_script,
    command,
    script,
)
from tests.integration.test_worker_run import (
    CIRRUS,
    GRACE_SECONDS,
    WorkerProcess,
    assert_clean_run,
    new_task,
    reported_statuses,
    sleep_marker,
    sleeps_of,
    task_calls,
    task_stopped,
    worker,
)

pytestmark = pytest.mark.integration

__all__ = ["sleep_marker", "worker"]  # fixtures shared with test_worker_run

PAUSE_WAIT_INTERVAL = 10  # seconds between QueryRunningTasks calls of `pause --wait`
BIG_LOG_BYTES = 200_000_000
MIB = 1024 * 1024
RSS_GROWTH_LIMIT = 10_000_000  # "a few MB": measured about 5 MB with 128 KiB log chunks


def cli_env() -> dict[str, str]:
    """The test's environment without any ``CIRRUS_*`` variable (they would override the file)."""
    return child_environment()


def run_worker_command(
    tmp_path: Path, controller: FakeController, *args: str, timeout: float = 30
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``cirrus worker ARGS -f FILE`` against ``controller``; return the result and the name."""
    name = "cli-" + uuid.uuid4().hex[:8]
    config_path = tmp_path / "pause-worker.yml"
    config = {
        "name": name,
        "token": controller.registration_token,
        "rpc": {"endpoint": controller.url},
    }
    config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [str(CIRRUS), "worker", *args, "-f", str(config_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=timeout,
        check=False,
    )
    return result, name


def assert_worker_credentials(call: Call, controller: FakeController, name: str) -> None:
    """The headers of a worker call made by a process that never registered."""
    assert call.headers.get("registration-token") == controller.registration_token
    assert call.headers.get("worker-name") == name
    assert call.headers.get("session-token", "") == ""


def assert_one_line_failure(result: subprocess.CompletedProcess[str]) -> None:
    """Exit status 1 with exactly one non-empty line on stderr and no traceback."""
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def scripted_controller() -> Iterator[ScriptedController]:
    """A fake controller that also serves pause/resume, scripted answers and counted logs."""
    controller = ScriptedController(poll_interval=1, hold_poll_seconds=1.0)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def second_controller() -> Iterator[FakeController]:
    """Another fake controller, with its own registration token."""
    controller = FakeController(poll_interval=1, hold_poll_seconds=1.0)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def scripted_worker(
    tmp_path: Path, scripted_controller: ScriptedController
) -> Iterator[WorkerProcess]:
    """A not yet started worker bound to ``scripted_controller``; killed at teardown."""
    process = WorkerProcess(tmp_path, scripted_controller)
    scripted_controller.give_up_check = process.exited_early
    try:
        yield process
    finally:
        scripted_controller.give_up_check = None
        process.kill()


def gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_group_of(pid_file: Path) -> None:
    """Kill the process group led by the pid written in ``pid_file`` (teardown of leftovers)."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip())
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


# --- worker pause / resume -----------------------------------------------------------------------


def test_worker_pause_sends_disabled_true_with_the_worker_credentials_and_exits_zero(
    tmp_path: Path, scripted_controller: ScriptedController
) -> None:
    result, name = run_worker_command(tmp_path, scripted_controller, "pause")

    assert result.returncode == 0, result.stderr
    calls = scripted_controller.calls("UpdateStatus")
    assert len(calls) == 1
    assert calls[0].status == 200
    assert calls[0].body.get("disabled") is True
    assert_worker_credentials(calls[0], scripted_controller, name)
    assert scripted_controller.worker_disabled(name)
    assert scripted_controller.calls("Register") == []
    assert scripted_controller.calls("QueryRunningTasks") == []
    assert scripted_controller.violations == []
    assert "Traceback" not in result.stderr + result.stdout


def test_worker_resume_sends_disabled_false_and_exits_zero(
    tmp_path: Path, scripted_controller: ScriptedController
) -> None:
    result, name = run_worker_command(tmp_path, scripted_controller, "resume")

    assert result.returncode == 0, result.stderr
    calls = scripted_controller.calls("UpdateStatus")
    assert len(calls) == 1
    assert calls[0].status == 200
    # proto3 JSON may leave a false bool out; either way it must not read as true.
    assert calls[0].body.get("disabled", False) is False
    assert_worker_credentials(calls[0], scripted_controller, name)
    assert not scripted_controller.worker_disabled(name)
    assert scripted_controller.violations == []
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("subcommand", ["pause", "resume"])
def test_a_controller_refusing_the_status_change_makes_the_command_exit_one_with_one_line(
    tmp_path: Path, scripted_controller: ScriptedController, subcommand: str
) -> None:
    scripted_controller.refuse_update_status("permission_denied")
    result, _ = run_worker_command(tmp_path, scripted_controller, subcommand)

    assert [c.status for c in scripted_controller.calls("UpdateStatus")] == [403]
    assert_one_line_failure(result)


@pytest.mark.parametrize(("subcommand", "answered"), [("pause", False), ("resume", True)])
def test_a_controller_answering_the_wrong_disabled_state_makes_the_command_exit_one(
    tmp_path: Path, scripted_controller: ScriptedController, subcommand: str, answered: bool
) -> None:
    scripted_controller.answer_disabled(answered)
    result, _ = run_worker_command(tmp_path, scripted_controller, subcommand)

    assert [c.status for c in scripted_controller.calls("UpdateStatus")] == [200]
    assert_one_line_failure(result)


def test_pause_wait_asks_for_running_tasks_until_none_is_left_then_exits_zero(
    tmp_path: Path, scripted_controller: ScriptedController
) -> None:
    scripted_controller.script_running_tasks(["task-a", "task-b"], ["task-b"], [])
    result, name = run_worker_command(
        tmp_path, scripted_controller, "pause", "--wait", timeout=3 * PAUSE_WAIT_INTERVAL + 30
    )

    assert result.returncode == 0, result.stderr
    updates = scripted_controller.calls("UpdateStatus")
    assert [c.body.get("disabled") for c in updates] == [True]
    queries = scripted_controller.calls("QueryRunningTasks")
    assert [c.status for c in queries] == [200, 200, 200]
    for query in queries:
        assert_worker_credentials(query, scripted_controller, name)
    assert updates[0].at <= queries[0].at
    assert scripted_controller.violations == []
    assert "Traceback" not in result.stderr + result.stdout


# --- the third signal ----------------------------------------------------------------------------


def test_a_third_sigterm_exits_at_once_with_a_non_zero_status(
    worker: WorkerProcess, fake_controller: FakeController, sleep_marker: str, tmp_path: Path
) -> None:
    interrupted = tmp_path / "got-sigint"
    pid_file = tmp_path / "stubborn.pid"
    # The script survives SIGINT (its trap notes it) and SIGTERM, so the cancellation has to
    # wait out the whole grace before its SIGKILL. Scripts run under ``sh -e``, and a ``wait``
    # interrupted by a trapped signal fails, hence ``|| :``.
    task = fake_controller.queue_task(
        new_task(
            script(
                "stubborn",
                f"echo $$ > '{pid_file}'",
                f"trap 'touch \"{interrupted}\"' INT",
                "trap '' TERM",
                f"sleep {sleep_marker} &",
                "while :; do wait || :; sleep 0.1; done",
            )
        )
    )
    try:
        worker.start()
        fake_controller.wait_for(lambda: sleeps_of(sleep_marker), 30, "the task's sleep")
        worker.send(signal.SIGTERM)
        fake_controller.wait_for_call(
            "UpdateStatus", lambda c: c.body.get("disabled") is True, timeout=20
        )
        worker.send(signal.SIGTERM)
        fake_controller.wait_for(interrupted.exists, 20, "the cancellation's SIGINT")
        interrupted_at = time.monotonic()
        assert worker.running()

        worker.send(signal.SIGTERM)
        third_at = time.monotonic()
        code = worker.wait_exit(GRACE_SECONDS)
        exited_after = time.monotonic() - third_at

        assert code != 0
        assert exited_after < 3.0
        # It did not merely finish the cancellation: the grace had not run out yet.
        assert time.monotonic() < interrupted_at + GRACE_SECONDS
        assert fake_controller.task(task.task_id).stopped == 0
        assert "Traceback" not in worker.output()
    finally:
        kill_group_of(pid_file)


# --- several upstreams ---------------------------------------------------------------------------


def test_a_worker_with_two_upstreams_runs_a_task_of_each_and_reports_each_to_its_own(
    worker: WorkerProcess,
    fake_controller: FakeController,
    second_controller: FakeController,
    tmp_path: Path,
) -> None:
    controllers = {"first": fake_controller, "second": second_controller}
    go_on = tmp_path / "go-on"
    tasks: dict[str, FakeTask] = {}
    for label, controller in controllers.items():
        tasks[label] = controller.queue_task(
            new_task(
                script(
                    "main",
                    f"echo upstream-{label}",
                    f"touch '{tmp_path / label}'",
                    f"while [ ! -e '{go_on}' ]; do sleep 0.05; done",
                )
            )
        )
    second_controller.give_up_check = worker.exited_early
    config = worker.config(
        upstreams=[{"endpoint": c.url, "token": c.registration_token} for c in controllers.values()]
    )
    del config["token"], config["rpc"]
    worker.start(config)

    for label, controller in controllers.items():
        controller.wait_for_call("Register", timeout=20)
        controller.wait_for((tmp_path / label).exists, 30, f"the task of the {label} upstream")
    both_running = time.monotonic()
    for label, controller in controllers.items():
        poll = controller.wait_for_call("Poll", after=both_running, timeout=20)
        assert poll.body.get("runningTasks") == [tasks[label].task_id], label
    go_on.touch()

    for label, controller in controllers.items():
        own = tasks[label].task_id
        other = tasks["second" if label == "first" else "first"].task_id
        done = task_stopped(controller, own, timeout=30)
        assert done.final_statuses() == {"main": "COMPLETED"}
        assert f"upstream-{label}" in done.log_text("main")
        assert done.started == 1
        assert done.stopped == 1
        for poll in controller.successful_calls("Poll"):
            assert other not in poll.body.get("runningTasks", []), label
        task_ids = {
            c.headers.get("org.cirruslabs.task-id")
            for c in controller.calls()
            if c.method not in {"Register", "Poll", "UpdateStatus", "QueryRunningTasks"}
        }
        assert task_ids == {own}, label
        assert controller.violations == []
        assert controller.auth_failures == []
    assert worker.running()
    assert "Traceback" not in worker.output()


# --- a very large log ----------------------------------------------------------------------------


def test_a_task_printing_200_mb_streams_every_byte_in_chunks_of_at_most_1_mib_in_bounded_memory(
    scripted_worker: WorkerProcess, scripted_controller: ScriptedController
) -> None:
    # A first small task loads whatever the worker loads for running tasks at all, so the
    # measurement below is about the log volume only.
    warm_up = scripted_controller.queue_task(new_task(script("main", "echo warm-up")))
    scripted_worker.start()
    task_stopped(scripted_controller, warm_up.task_id, timeout=60)
    process = psutil.Process(scripted_worker.pid)
    idle_rss = process.memory_info().rss

    scripted_controller.count_logs(b"a")
    big = scripted_controller.queue_task(
        new_task(script("big", f"head -c {BIG_LOG_BYTES} /dev/zero | tr '\\0' a"))
    )
    peak_rss = idle_rss
    samples = 0
    next_sample = 0.0

    def stopped_while_sampling() -> bool:
        nonlocal peak_rss, samples, next_sample
        if time.monotonic() >= next_sample:
            peak_rss = max(peak_rss, process.memory_info().rss)
            samples += 1
            next_sample = time.monotonic() + 0.2
        return scripted_controller.task(big.task_id).stopped > 0

    scripted_controller.wait_for(stopped_while_sampling, 240, "the 200 MB task to stop")

    done = scripted_controller.task(big.task_id)
    tally = scripted_controller.log_tally(big.task_id, "big")
    assert done.final_statuses() == {"big": "COMPLETED"}
    assert tally.total == BIG_LOG_BYTES
    assert tally.unexpected == 0
    assert 0 < tally.largest <= MIB
    assert samples >= 5
    assert peak_rss - idle_rss <= RSS_GROWTH_LIMIT, (
        f"RSS grew from {idle_rss} to {peak_rss} ({(peak_rss - idle_rss) / 1e6:.1f} MB) "
        f"over {samples} samples and {tally.chunks} chunks"
    )
    assert scripted_worker.running()
    assert_clean_run(scripted_controller, scripted_worker)


# --- instructions --------------------------------------------------------------------------------


def test_file_instructions_write_contents_and_environment_variables(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    absolute = tmp_path / "from-variable.txt"
    variable_value = "first line of the variable\nsecond line " + uuid.uuid4().hex
    task = fake_controller.queue_task(
        new_task(
            command(
                "contents",
                {
                    "fileInstruction": {
                        "destinationPath": "from-contents.txt",
                        "fromContents": "written from contents\n",
                    }
                },
            ),
            command(
                "variable",
                {
                    "fileInstruction": {
                        "destinationPath": str(absolute),
                        "fromEnvironmentVariable": "FILE_SOURCE",
                    }
                },
            ),
            script(
                "check",
                'test -f "$CIRRUS_WORKING_DIR/from-contents.txt" && echo relative-to-workdir',
                "cat from-contents.txt",
            ),
            environment={"FILE_SOURCE": variable_value},
        )
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, timeout=60)
    assert done.final_statuses() == {
        "contents": "COMPLETED",
        "variable": "COMPLETED",
        "check": "COMPLETED",
    }
    assert "relative-to-workdir" in done.log_text("check")
    assert "written from contents" in done.log_text("check")
    assert absolute.read_text() == variable_value
    assert done.failures == []
    assert_clean_run(fake_controller, worker)


def test_a_background_script_is_logged_and_killed_when_the_task_ends(
    worker: WorkerProcess, fake_controller: FakeController, sleep_marker: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "background.pid"
    ready = tmp_path / "background-ready"
    task = fake_controller.queue_task(
        new_task(
            background_script(
                "helper",
                f"echo $$ > '{pid_file}.tmp' && mv '{pid_file}.tmp' '{pid_file}'",
                f"sleep {sleep_marker} &",
                "echo background-started",
                f"touch '{ready}'",
                "while :; do echo background-tick; sleep 0.2; done",
            ),
            script(
                "main",
                f"while [ ! -e '{ready}' ]; do sleep 0.05; done",
                "echo main-saw-the-background",
            ),
        )
    )
    try:
        worker.start()
        fake_controller.wait_for(pid_file.exists, 30, "the background script's pid file")
        background_pid = int(pid_file.read_text().strip())

        done = task_stopped(fake_controller, task.task_id, timeout=60)
        assert done.final_statuses() == {"helper": "COMPLETED", "main": "COMPLETED"}
        assert "background-started" in done.log_text("helper")
        assert "main-saw-the-background" in done.log_text("main")
        fake_controller.wait_for(
            lambda: gone(background_pid) and not sleeps_of(sleep_marker),
            2,
            "the background script and its sleep to be gone",
        )
        assert done.failures == []
        assert worker.running()
        assert_clean_run(fake_controller, worker)
    finally:
        kill_group_of(pid_file)


def test_an_exit_instruction_skips_later_commands_except_always(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task = fake_controller.queue_task(
        new_task(
            script("first", "echo first-ran"),
            command("leave", {"exitInstruction": {}}),
            script("later", "echo later-must-not-run"),
            script("on_failure", "echo on-failure-must-not-run", behaviour="ON_FAILURE"),
            script("always", "echo always-ran", behaviour="ALWAYS"),
        )
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, timeout=60)
    statuses = done.final_statuses()
    assert "leave" in statuses
    assert {k: v for k, v in statuses.items() if k != "leave"} == {
        "first": "COMPLETED",
        "later": "SKIPPED",
        "on_failure": "SKIPPED",
        "always": "COMPLETED",
    }
    assert "first-ran" in done.log_text("first")
    assert "always-ran" in done.log_text("always")
    assert "must-not-run" not in done.log_text()
    assert done.failures == []
    assert_clean_run(fake_controller, worker)


def test_an_unimplemented_instruction_fails_its_command_with_a_log_line_saying_so(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task = fake_controller.queue_task(
        new_task(
            script("before", "echo before-ran"),
            command("node_modules", {"waitForTerminalInstruction": {}}),
            script("after", "echo after-must-not-run"),
            script("on_failure", "echo on-failure-ran", behaviour="ON_FAILURE"),
        )
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, timeout=60)
    assert done.final_statuses() == {
        "before": "COMPLETED",
        "node_modules": "FAILED",
        "after": "SKIPPED",
        "on_failure": "COMPLETED",
    }
    explanation = done.log_text("node_modules")
    assert "wait_for_terminal" in explanation.lower()
    assert re.search(r"not (supported|implemented)|unsupported|unimplemented", explanation, re.I)
    assert "on-failure-ran" in done.log_text("on_failure")
    assert done.failures == []
    assert_clean_run(fake_controller, worker)


# --- task ids ------------------------------------------------------------------------------------


def test_a_task_id_delivered_again_in_a_later_poll_is_ignored(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    task = fake_controller.queue_task(
        new_task(
            script(
                "main",
                "echo run-of-the-task",
                f"while [ ! -e '{go_on}' ]; do sleep 0.05; done",
            )
        )
    )
    worker.start()
    fake_controller.wait_for_call("InitialCommands", timeout=30)
    first_delivery = fake_controller.task(task.task_id).delivered_at
    assert first_delivery is not None
    fake_controller.queue_task(task)  # the very same id (and secrets) once more

    def delivered_again() -> float | None:
        delivered = fake_controller.task(task.task_id).delivered_at
        return delivered if delivered != first_delivery else None

    again_at = fake_controller.wait_for(delivered_again, 20, "the repeated delivery")
    fake_controller.wait_for(
        lambda: (
            len([p for p in fake_controller.successful_calls("Poll") if p.at > again_at + 0.001])
            >= 2
        ),
        20,
        "two polls after the repeated delivery",
    )
    go_on.touch()

    done = task_stopped(fake_controller, task.task_id, timeout=30)
    stopped_at = done.stopped_at
    assert stopped_at is not None
    fake_controller.wait_for(
        lambda: (
            len([p for p in fake_controller.successful_calls("Poll") if p.at > stopped_at + 0.001])
            >= 2
        ),
        20,
        "two polls after TaskStopped",
    )
    done = fake_controller.task(task.task_id)
    assert done.started == 1
    assert done.initial_commands_calls == 1
    assert done.stopped == 1
    assert done.failures == []
    assert done.final_statuses() == {"main": "COMPLETED"}
    assert done.log_text("main").count("run-of-the-task") == 1
    assert len(task_calls(fake_controller, "ReportAgentFinished", task.task_id)) == 1
    assert worker.running()
    assert_clean_run(fake_controller, worker)


def test_a_non_numeric_task_id_works_end_to_end_and_travels_in_headers_only(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task_id = f"build-{uuid.uuid4().hex[:6]}.Lint_Check+retry~2"
    task = fake_controller.queue_task(
        FakeTask(task_id, [script("main", 'echo "id=$CIRRUS_TASK_ID"')])
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, timeout=60)
    assert done.final_statuses() == {"main": "COMPLETED"}
    assert f"id={task_id}" in done.log_text("main")
    assert done.started == 1
    assert done.stopped == 1
    for method in ("TaskStarted", "TaskStopped"):
        calls = task_calls(fake_controller, method, task_id)
        assert len(calls) == 1, method
        assert "taskId" not in calls[0].body, method
        assert "task_id" not in calls[0].body, method
        assert calls[0].headers.get("org.cirruslabs.client-secret") == task.client_secret
    scoped = [
        c
        for c in fake_controller.calls()
        if c.method not in {"Register", "Poll", "UpdateStatus", "QueryRunningTasks"}
    ]
    assert scoped
    assert {c.headers.get("org.cirruslabs.task-id") for c in scoped} == {task_id}
    assert reported_statuses(done) == {"main": "COMPLETED"}
    assert_clean_run(fake_controller, worker)
