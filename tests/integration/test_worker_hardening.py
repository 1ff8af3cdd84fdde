"""The worker against a misbehaving controller: outages, oversized answers, endless refusals.

The real ``cirrus worker run`` against the fake controller scripted to misbehave (see
``test_worker_run.py`` for how the worker is driven). Each test shows one promise of
``docs/polling-and-logs.md`` that a hostile or failing controller must not break.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.test_worker_run import (
    BACKOFF_CAP_SECONDS,
    WorkerProcess,
    assert_clean_run,
    new_task,
    task_stopped,
)
from tests.integration.test_worker_run import worker as worker  # the fixture, shared

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
ANSWER_CAP = 16 * MIB  # the worker's documented cap on a controller answer


def peak_rss_bytes(pid: int) -> int:
    """The highest resident set size the process ever had (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def wait_seconds(controller: FakeController, seconds: float, what: str) -> None:
    """Let ``seconds`` pass (a scripted duration, not a guess at how long something takes)."""
    began = time.monotonic()
    controller.wait_for(lambda: time.monotonic() - began >= seconds, seconds + 5, what)


# --- item 2: every log byte once, in order, whatever the outage ------------------------------


def test_every_line_of_a_command_that_ends_during_an_outage_arrives_once_in_order(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    go, ended = tmp_path / "go", tmp_path / "ended"
    lines = 80
    task = fake_controller.queue_task(
        new_task(
            script(
                "main",
                f"while [ ! -e '{go}' ]; do sleep 0.05; done",
                f"for i in $(seq 1 {lines}); do echo line-$i; sleep 0.05; done",
                f"touch '{ended}'",
            )
        )
    )
    worker.start()
    fake_controller.wait_for_call("InitialCommands", timeout=30)

    with fake_controller.outage():
        # Output flows for about 4 s of outage: periodic flushes fill both in-flight slots and
        # the next one waits for a slot when the command ends.
        go.touch()
        fake_controller.wait_for(ended.exists, 30, "the command to end")
        wait_seconds(fake_controller, 2, "the command's output to be closed during the outage")

    done = task_stopped(fake_controller, task.task_id, timeout=BACKOFF_CAP_SECONDS + 30)
    assert done.final_statuses() == {"main": "COMPLETED"}
    expected = "".join(f"line-{i}\n" for i in range(1, lines + 1))
    assert done.log_text("main") == expected
    assert_clean_run(fake_controller, worker)


# --- item 8: a size cap on controller answers ------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS read from /proc")
def test_oversized_and_endless_answers_are_refused_without_growing_the_worker(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    worker.start()
    fake_controller.wait_for_call("Poll", timeout=30)
    baseline = peak_rss_bytes(worker.pid)
    began = time.monotonic()
    fake_controller.oversize_answers("Poll", 256 * MIB, chunked=True)
    fake_controller.oversize_answers("Poll", 256 * MIB, chunked=False)
    fake_controller.wait_for(
        lambda: len(fake_controller.oversize_sent) == 2, 60, "both oversized answers"
    )
    after = fake_controller.wait_for_call("Poll", after=time.monotonic(), timeout=60)

    # Refused at the cap: the worker never holds an answer much beyond it.
    grown = peak_rss_bytes(worker.pid) - baseline
    assert grown < 3 * ANSWER_CAP, f"peak RSS grew by {grown / MIB:.0f} MiB"
    # Treated as a malformed answer, with backoff: the second came at least a second later.
    # Answered since: the first oversized answer may go to a poll held from before.
    polls = [c for c in fake_controller.calls("Poll") if c.at >= began]
    assert len(polls) >= 3
    assert polls[1].received - polls[0].at >= 0.9
    assert after.status == 200
    assert f"exceeds {ANSWER_CAP} bytes" in worker.output()

    # And the worker goes on working.
    task = fake_controller.queue_task(new_task(script("main", "echo still-here")))
    done = task_stopped(fake_controller, task.task_id, timeout=BACKOFF_CAP_SECONDS + 30)
    assert "still-here" in done.log_text("main")
    assert_clean_run(fake_controller, worker)


# --- item 9: refused tasks wait for the normal interval --------------------------------------


def forbidden_task() -> FakeTask:
    """A task whose isolation the worker's security settings (none allowed) refuse."""
    return FakeTask("refused-" + uuid.uuid4().hex[:10], [script("main", "echo must-not-run")])


def test_a_controller_offering_refused_tasks_on_every_poll_is_polled_once_per_interval(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    fake_controller.set_poll_interval(1, hold_poll_seconds=1.0)
    worker.start(worker.config(security={"allowed-isolations": {}}))
    fake_controller.wait_for_call("Poll", timeout=30)
    fake_controller.keep_offering(forbidden_task)
    fake_controller.wait_for_call("TaskFailed", timeout=30)  # the first refusal

    window = 5.0
    began = time.monotonic()
    wait_seconds(fake_controller, window, "the observation window")
    # Answered since: the first oversized answer may go to a poll held from before.
    polls = [c for c in fake_controller.calls("Poll") if c.at >= began]
    fake_controller.keep_offering(None)

    # One poll per 1 s interval, plus the one in flight when the window opened.
    assert len(polls) <= window + 2, f"{len(polls)} polls in {window} s"
    failures = [c.body.get("message", "") for c in fake_controller.calls("TaskFailed")]
    assert failures
    assert all("isolation is not allowed" in m for m in failures)
    assert worker.running()
