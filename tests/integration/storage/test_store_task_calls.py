"""What the store reads and changes in one call for a worker's ``InitialCommands``
(``task_to_run``), ``TaskStopped`` (``stop_task``) and the reported tasks of a ``Poll``
(``check_in_worker``)."""

from __future__ import annotations

import pytest

from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.protocol import CommandResult, CommandStatus
from domain.store import ControllerStore, TaskStop, hash_token
from tests.integration.storage.conftest import FakeClock

pytestmark = pytest.mark.integration

# "test" waits in CREATED for "build": the build has something left to advance.
SPEC = BuildSpec(
    tasks=(TaskSpec(name="build", environment={"A": "1"}), TaskSpec("test", depends_on=("build",))),
    environment={"CIRRUS_REPO_FULL_NAME": "octo/cat", "B": "2"},
)


async def _claimed_task(store: ControllerStore) -> str:
    build = await store.create_build(SPEC)
    await store.upsert_worker("w1", {}, {}, hash_token("session-1"))
    claimed = await store.claim_task(build.tasks[0].id, "w1")
    assert claimed is not None
    return claimed.id


async def test_a_task_to_run_comes_with_its_results_and_its_builds_environment(
    store: ControllerStore,
) -> None:
    task_id = await _claimed_task(store)
    await store.record_command_results(task_id, [CommandResult("clone", CommandStatus.EXECUTING)])
    to_run = await store.task_to_run(task_id)
    assert to_run is not None
    assert to_run.task == await store.get_task(task_id)
    assert [r.name for r in to_run.task.command_results] == ["clone"]
    assert dict(to_run.build_environment) == {"CIRRUS_REPO_FULL_NAME": "octo/cat", "B": "2"}


async def test_an_unknown_task_has_nothing_to_run(store: ControllerStore) -> None:
    await _claimed_task(store)
    assert await store.task_to_run("999999") is None
    assert await store.task_to_run("not-an-id") is None


async def test_stopping_a_task_finalises_it_with_its_message_and_counts_created_tasks(
    store: ControllerStore, clock: FakeClock
) -> None:
    task_id = await _claimed_task(store)
    clock.advance(5)
    outcome = await store.stop_task(task_id, TaskStatus.FAILED, 'command "main" failed')
    assert outcome.created_left == 1
    assert outcome.stopped is not None
    assert outcome.stopped == await store.get_task(task_id)
    assert outcome.stopped.status is TaskStatus.FAILED
    assert outcome.stopped.failure_message == 'command "main" failed'
    assert outcome.stopped.stopped_at == clock.now()


async def test_stopping_keeps_a_final_status_and_its_message(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    assert await store.finish_task(task_id, TaskStatus.FAILED, "no such image")
    outcome = await store.stop_task(task_id, TaskStatus.ABORTED, "something else")
    assert outcome.stopped is not None
    assert (outcome.stopped.status, outcome.stopped.failure_message) == (
        TaskStatus.FAILED,
        "no such image",
    )


async def test_stopping_without_a_message_keeps_the_stored_one(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    outcome = await store.stop_task(task_id, TaskStatus.COMPLETED)
    assert outcome.stopped is not None
    assert (outcome.stopped.status, outcome.stopped.failure_message) == (TaskStatus.COMPLETED, "")


async def test_a_task_is_stopped_once_but_its_build_counted_each_time(
    store: ControllerStore,
) -> None:
    task_id = await _claimed_task(store)
    first = await store.stop_task(task_id, TaskStatus.COMPLETED)
    assert first.stopped is not None
    again = await store.stop_task(task_id, TaskStatus.FAILED, "late")
    assert again == TaskStop(None, 1)
    assert await store.get_task(task_id) == first.stopped


async def test_an_unclaimed_or_unknown_task_is_not_stopped(store: ControllerStore) -> None:
    build = await store.create_build(SPEC)
    queued = build.tasks[0].id
    assert await store.stop_task(queued, TaskStatus.FAILED, "no") == TaskStop(None, 1)
    task = await store.get_task(queued)
    assert task is not None
    assert (task.status, task.stopped_at, task.failure_message) == (TaskStatus.SCHEDULED, None, "")
    assert await store.stop_task("999999", TaskStatus.COMPLETED) == TaskStop(None, 0)


async def test_stopping_needs_a_final_status(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    with pytest.raises(ValueError, match="not a final status"):
        await store.stop_task(task_id, TaskStatus.EXECUTING)
    task = await store.get_task(task_id)
    assert task is not None
    assert task.stopped_at is None


async def _single_task(store: ControllerStore, worker: str | None = None) -> str:
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="main"),)))
    if worker is None:
        return build.tasks[0].id
    claimed = await store.claim_task(build.tasks[0].id, worker)
    assert claimed is not None
    return claimed.id


async def test_a_check_in_reads_the_reported_tasks_that_do_not_occupy_the_worker(
    store: ControllerStore,
) -> None:
    await store.upsert_worker("w1", {}, {}, hash_token("s1"))
    await store.upsert_worker("w2", {}, {}, hash_token("s2"))
    head, behind = await _single_task(store), await _single_task(store)
    held, stopped, foreign = [await _single_task(store, w) for w in ("w1", "w1", "w2")]
    await store.stop_task(stopped, TaskStatus.COMPLETED)
    reported = [held, stopped, foreign, head, behind, "999999"]
    checked_in = await store.check_in_worker("w1", hash_token("s1"), {}, reported, queue_limit=1)
    assert checked_in is not None
    assert [task.id for task in checked_in.held] == [held]
    assert [task.id for task in checked_in.queued] == [head]
    assert dict(checked_in.reported) == {
        stopped: await store.get_task(stopped),
        foreign: await store.get_task(foreign),
        head: None,  # queued without a worker: not the worker's, whether in the page or not
        behind: None,
        "999999": None,
    }


async def test_still_queued_reads_which_of_some_tasks_are_queued_at_once(
    store: ControllerStore,
) -> None:
    await store.upsert_worker("w1", {}, {}, hash_token("s1"))
    first, second = await _single_task(store), await _single_task(store)
    claimed = await _single_task(store, "w1")
    ids = [second, "999999", claimed, "not-an-id", first, second]
    assert [task.id for task in await store.still_queued(ids)] == [first, second]
    assert await store.still_queued([first]) == [await store.get_task(first)]
    assert await store.still_queued([]) == []


async def test_held_and_reported_reads_the_workers_tasks_and_the_reported_ones_together(
    store: ControllerStore,
) -> None:
    await store.upsert_worker("w1", {}, {}, hash_token("s1"))
    await store.upsert_worker("w2", {}, {}, hash_token("s2"))
    queued = await _single_task(store)
    held, stopped, foreign = [await _single_task(store, w) for w in ("w1", "w1", "w2")]
    await store.stop_task(stopped, TaskStatus.COMPLETED)
    mine = await store.held_and_reported("w1", [held, stopped, foreign, queued, "999999"])
    assert list(mine.held) == await store.tasks_of_worker("w1")
    assert [task.id for task in mine.held] == [held]
    assert dict(mine.reported) == {
        stopped: await store.get_task(stopped),
        foreign: await store.get_task(foreign),
        queued: None,
        "999999": None,
    }
    assert dict((await store.held_and_reported("w1", [])).reported) == {}
