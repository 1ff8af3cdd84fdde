"""The ``ControllerStore`` contract: builds, task transitions and their guards, workers, tokens."""

from __future__ import annotations

import pytest

from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.isolation import ContainerIsolation, ContainerVolume
from domain.protocol import (
    Command,
    CommandResult,
    CommandStatus,
    ExecutionBehaviour,
    ScriptInstruction,
)
from domain.store import (
    REGISTRATION_TOKEN_KEY,
    ControllerStore,
    NoSuchTaskError,
    QueueSummary,
    TaskAssignment,
    hash_token,
    lost_worker_message,
    token_matches,
)
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration

BUILD_TASK = TaskSpec(
    name="build",
    labels={"os": "linux"},
    isolation=ContainerIsolation(
        image="debian:12", cpu=2.0, memory=4096, volumes=(ContainerVolume("/src", "/dst", True),)
    ),
    resources={"cpu": 2.0},
    environment={"A": "1"},
    timeout_seconds=90,
    commands=(
        Command("main", ScriptInstruction(("make", "make check"))),
        Command("cleanup", ScriptInstruction(("rm -rf out",)), ExecutionBehaviour.ALWAYS),
    ),
)
TEST_TASK = TaskSpec(name="test", depends_on=("build",))


async def _queued_task(store: ControllerStore, name: str = "main") -> str:
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name=name),)))
    return build.tasks[0].id


async def _claimed_task(store: ControllerStore, worker: str = "w1") -> str:
    task_id = await _queued_task(store)
    assert await store.claim_task(task_id, worker) is not None
    return task_id


async def test_a_created_build_reads_back_with_its_specs_and_first_statuses(
    store: ControllerStore, clock: FakeClock
) -> None:
    spec = BuildSpec(tasks=(BUILD_TASK, TEST_TASK), environment={"CI_X": "y"})
    created = await store.create_build(spec)
    again = await store.get_build(created.id)
    assert again == created
    assert dict(created.environment) == {"CI_X": "y"}
    assert created.created_at == clock.now()
    assert [(t.name, t.status) for t in created.tasks] == [
        ("build", TaskStatus.SCHEDULED),
        ("test", TaskStatus.CREATED),
    ]
    assert created.tasks[0].spec == BUILD_TASK
    assert created.tasks[1].spec == TEST_TASK
    assert created.tasks[0].build_id == created.id
    assert created.status is TaskStatus.EXECUTING
    assert await store.list_build_tasks(created.id) == list(created.tasks)


async def test_tasks_of_a_build_may_share_a_name_and_keep_their_order(
    store: ControllerStore,
) -> None:
    spec = BuildSpec(tasks=(TaskSpec("main"), TaskSpec("main", labels={"os": "darwin"}), TEST_TASK))
    created = await store.create_build(spec)
    assert [t.spec for t in created.tasks] == list(spec.tasks)
    assert created.spec == spec
    assert len({t.id for t in created.tasks}) == 3


async def test_a_queued_task_shows_the_scheduler_its_labels_resources_and_sequence(
    store: ControllerStore,
) -> None:
    created = await store.create_build(BuildSpec(tasks=(BUILD_TASK,)))
    (queued,) = await store.queued_tasks()
    view = queued.as_queued()
    assert (view.id, view.sequence) == (created.tasks[0].id, queued.sequence)
    assert (dict(view.labels), dict(view.resources)) == ({"os": "linux"}, {"cpu": 2.0})


async def test_unknown_or_malformed_ids_read_as_absent(store: ControllerStore) -> None:
    for missing in ("999", "abc", "", "-1", "99999999999999999999999"):
        assert await store.get_build(missing) is None
        assert await store.get_task(missing) is None
        assert await store.claim_task(missing, "w") is None
        assert await store.request_cancel(missing) is None
        assert await store.list_build_tasks(missing) == []


async def test_queued_tasks_come_oldest_first_across_builds(store: ControllerStore) -> None:
    first = await store.create_build(BuildSpec(tasks=(TaskSpec("a"), TaskSpec("b"))))
    second = await store.create_build(
        BuildSpec(tasks=(TaskSpec("c"), TaskSpec("d", depends_on=("c",))))
    )
    queued = await store.queued_tasks()
    assert [t.name for t in queued] == ["a", "b", "c"]
    assert [t.sequence for t in queued] == sorted(t.sequence for t in queued)
    await store.claim_task(first.tasks[1].id, "w1")
    assert [t.name for t in await store.queued_tasks()] == ["a", "c"]
    assert await store.set_status(second.tasks[1].id, {TaskStatus.CREATED}, TaskStatus.SCHEDULED)
    assert [t.name for t in await store.queued_tasks()] == ["a", "c", "d"]


async def test_queued_tasks_page_oldest_first_by_limit_and_sequence(
    store: ControllerStore,
) -> None:
    build = await store.create_build(BuildSpec(tasks=tuple(TaskSpec(f"t{i}") for i in range(5))))
    await store.claim_task(build.tasks[1].id, "w1")
    first = await store.queued_tasks(limit=2)
    assert [t.name for t in first] == ["t0", "t2"]
    rest = await store.queued_tasks(limit=2, after_sequence=first[-1].sequence)
    assert [t.name for t in rest] == ["t3", "t4"]
    assert await store.queued_tasks(limit=2, after_sequence=rest[-1].sequence) == []
    assert [t.name for t in await store.queued_tasks(after_sequence=first[0].sequence)] == [
        "t2",
        "t3",
        "t4",
    ]
    assert await store.queued_tasks(limit=10) == await store.queued_tasks()


async def test_a_limit_below_one_is_refused(store: ControllerStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.queued_tasks(limit=0)


async def test_the_queue_summary_counts_queued_tasks_and_their_latest_queue_time(
    store: ControllerStore, clock: FakeClock
) -> None:
    assert await store.queue_summary() == QueueSummary(0, None)
    first = await store.create_build(
        BuildSpec(tasks=(TaskSpec("a"), TaskSpec("b"), TaskSpec("c", depends_on=("a",))))
    )
    assert await store.queue_summary() == QueueSummary(2, clock.now())
    queued_at = clock.now()
    clock.advance(5)
    await store.claim_task(first.tasks[0].id, "w1")
    assert await store.queue_summary() == QueueSummary(1, queued_at)
    clock.advance(5)
    assert await store.set_status(first.tasks[2].id, {TaskStatus.CREATED}, TaskStatus.SCHEDULED)
    assert await store.queue_summary() == QueueSummary(2, clock.now())
    await store.request_cancel(first.tasks[1].id)
    await store.request_cancel(first.tasks[2].id)
    assert await store.queue_summary() == QueueSummary(0, None)


async def test_a_task_released_from_a_lost_worker_moves_the_queue_summary(
    store: ControllerStore, clock: FakeClock
) -> None:
    await _queued_task(store)
    claimed = await _claimed_task(store)
    before = await store.queue_summary()
    clock.advance(1)
    await store.release_worker("w1")
    after = await store.queue_summary()
    assert (after.length, after.last_queued_at) == (before.length + 1, clock.now())
    assert [t.id for t in await store.queued_tasks()][-1] == claimed


async def test_build_tasks_are_counted_by_status(store: ControllerStore) -> None:
    build = await store.create_build(
        BuildSpec(tasks=(TaskSpec("a"), TaskSpec("b", depends_on=("a",)), TaskSpec("c")))
    )
    other = await store.create_build(BuildSpec(tasks=(TaskSpec("d", depends_on=("x",)),)))
    assert await store.count_build_tasks(build.id, {TaskStatus.CREATED}) == 1
    assert await store.count_build_tasks(build.id, {TaskStatus.SCHEDULED}) == 2
    both = {TaskStatus.CREATED, TaskStatus.SCHEDULED}
    assert await store.count_build_tasks(build.id, both) == 3
    assert await store.count_build_tasks(other.id, {TaskStatus.CREATED}) == 1
    assert await store.count_build_tasks(build.id, {TaskStatus.FAILED}) == 0
    assert await store.count_build_tasks(build.id, ()) == 0
    assert await store.count_build_tasks("999", {TaskStatus.CREATED}) == 0
    assert await store.count_build_tasks("abc", {TaskStatus.CREATED}) == 0


async def test_a_claim_hands_the_task_to_one_worker_with_fresh_secrets(
    store: ControllerStore,
) -> None:
    task_id = await _queued_task(store)
    claimed = await store.claim_task(task_id, "w1")
    assert claimed is not None
    assert (claimed.status, claimed.worker) == (TaskStatus.EXECUTING, "w1")
    assert claimed.client_secret
    assert claimed.server_secret
    assert claimed.client_secret != claimed.server_secret
    assert claimed.started_at is None
    assert claimed.occupies_worker
    assert await store.claim_task(task_id, "w2") is None
    assert await store.claim_task(task_id, "w1") is None
    assert [t.id for t in await store.tasks_of_worker("w1")] == [task_id]
    assert await store.tasks_of_worker("w2") == []
    assert await store.held_task_ids("w1") == [task_id]
    assert await store.held_task_ids("w2") == []


async def test_a_task_assignment_names_its_worker_and_client_secret_once_claimed(
    store: ControllerStore,
) -> None:
    task_id = await _queued_task(store)
    queued = (await store.task_credentials("w1", task_id)).assignment
    assert queued is not None
    assert (queued.id, queued.worker, queued.client_secret) == (task_id, None, "")
    claimed = await store.claim_task(task_id, "w1")
    assert claimed is not None
    assignment = (await store.task_credentials("w1", task_id)).assignment
    assert assignment is not None
    assert (assignment.id, assignment.build_id) == (task_id, claimed.build_id)
    assert (assignment.worker, assignment.client_secret) == ("w1", claimed.client_secret)


async def test_an_unknown_or_malformed_task_has_no_assignment(store: ControllerStore) -> None:
    for missing in ("999", "abc", "", "-1", "0"):
        assert (await store.task_credentials("w1", missing)).assignment is None


async def test_a_worker_session_hash_is_read_alone_and_absent_for_strangers(
    store: ControllerStore,
) -> None:
    assert await store.worker_session_hash("w1") is None
    await store.upsert_worker("w1", {"os": "linux"}, {"cpu": 4.0}, hash_token("session-1"))
    session_hash = await store.worker_session_hash("w1")
    assert session_hash is not None
    assert token_matches("session-1", session_hash)
    assert not token_matches("session-2", session_hash)
    assert await store.worker_session_hash("w2") is None


async def test_a_check_in_returns_the_worker_its_occupying_tasks_and_the_queue_head(
    store: ControllerStore,
) -> None:
    await store.upsert_worker("w1", {"os": "linux"}, {"cpu": 4.0}, hash_token("s1"))
    held = await _claimed_task(store, "w1")
    await _claimed_task(store, "w2")
    stopped = await _claimed_task(store, "w1")
    await store.stop_task(stopped, TaskStatus.COMPLETED)
    queued = [await _queued_task(store, f"q{i}") for i in range(3)]
    checked_in = await store.check_in_worker("w1", hash_token("s1"), {}, [held], queue_limit=2)
    assert checked_in is not None
    assert [task.id for task in checked_in.held] == [held]
    assert [task.id for task in checked_in.queued] == queued[:2]
    assert [task.id for task in checked_in.held] == [
        task.id for task in await store.tasks_of_worker("w1")
    ]
    assert list(checked_in.queued) == await store.queued_tasks(2)


async def test_a_check_in_with_another_session_is_refused_and_records_nothing(
    store: ControllerStore, clock: FakeClock
) -> None:
    await store.upsert_worker("w1", {"os": "linux"}, {"cpu": 4.0}, hash_token("old"))
    await store.upsert_worker("w1", {"os": "linux"}, {"cpu": 4.0}, hash_token("new"))
    before = await store.get_worker("w1")
    clock.advance(5)
    for session in ("old", "", "w1"):
        refused = await store.check_in_worker(
            "w1", hash_token(session), {"cpu": 1}, ["3"], queue_limit=1
        )
        assert refused is None
    assert await store.get_worker("w1") == before
    accepted = await store.check_in_worker("w1", hash_token("new"), {}, [], queue_limit=1)
    assert accepted is not None
    assert accepted.worker.last_seen == clock.now()


async def test_task_credentials_read_the_session_hash_and_the_assignment_together(
    store: ControllerStore,
) -> None:
    task_id = await _queued_task(store)
    nobody = await store.task_credentials("w1", task_id)
    assert nobody.session_token_hash is None
    assert nobody.assignment is not None
    assert (nobody.assignment.id, nobody.assignment.worker) == (task_id, None)
    await store.upsert_worker("w1", {}, {}, hash_token("session-1"))
    claimed = await store.claim_task(task_id, "w1")
    assert claimed is not None
    credentials = await store.task_credentials("w1", task_id)
    assert credentials.session_token_hash is not None
    assert token_matches("session-1", credentials.session_token_hash)
    assert credentials.assignment == TaskAssignment(
        task_id, claimed.build_id, "w1", claimed.client_secret
    )
    for missing in ("999", "abc", "", "-1", "0"):
        unknown_task = await store.task_credentials("w1", missing)
        assert unknown_task.assignment is None
        assert unknown_task.session_token_hash == credentials.session_token_hash
    stranger = await store.task_credentials("w2", task_id)
    assert (stranger.session_token_hash, stranger.assignment) == (None, credentials.assignment)


async def test_a_task_waiting_for_dependencies_cannot_be_claimed(store: ControllerStore) -> None:
    build = await store.create_build(BuildSpec(tasks=(BUILD_TASK, TEST_TASK)))
    assert await store.claim_task(build.tasks[1].id, "w1") is None


async def test_set_status_changes_only_from_an_expected_status(store: ControllerStore) -> None:
    build = await store.create_build(BuildSpec(tasks=(BUILD_TASK, TEST_TASK)))
    test_id = build.tasks[1].id
    assert not await store.set_status(test_id, {TaskStatus.SCHEDULED}, TaskStatus.SKIPPED)
    assert await store.set_status(test_id, {TaskStatus.CREATED}, TaskStatus.SKIPPED, "dep failed")
    task = await store.get_task(test_id)
    assert task is not None
    assert (task.status, task.failure_message) == (TaskStatus.SKIPPED, "dep failed")
    assert not await store.set_status(test_id, {TaskStatus.CREATED}, TaskStatus.SCHEDULED)
    assert not await store.set_status(test_id, (), TaskStatus.SCHEDULED)


async def test_a_task_starts_once_and_its_times_come_from_the_clock(
    store: ControllerStore, clock: FakeClock
) -> None:
    task_id = await _claimed_task(store)
    clock.advance(5)
    assert await store.mark_started(task_id)
    clock.advance(5)
    assert not await store.mark_started(task_id)
    task = await store.get_task(task_id)
    assert task is not None
    assert task.started_at == task.updated_at == task.created_at + 5


async def test_an_unclaimed_task_cannot_start(store: ControllerStore) -> None:
    assert not await store.mark_started(await _queued_task(store))


async def test_command_results_merge_by_name_in_first_seen_order(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    await store.record_command_results(
        task_id,
        [
            CommandResult("clone", CommandStatus.COMPLETED, 5),
            CommandResult("main", CommandStatus.EXECUTING),
        ],
    )
    await store.record_command_results(
        task_id, [CommandResult("main", CommandStatus.FAILED, 7, signaled_to_exit=True)]
    )
    await store.record_command_results(task_id, [CommandResult("after", CommandStatus.SKIPPED)])
    task = await store.get_task(task_id)
    assert task is not None
    assert task.command_results == (
        CommandResult("clone", CommandStatus.COMPLETED, 5),
        CommandResult("main", CommandStatus.FAILED, 7, signaled_to_exit=True),
        CommandResult("after", CommandStatus.SKIPPED),
    )


async def test_one_report_may_name_a_command_twice_and_mix_known_and_new_names(
    store: ControllerStore,
) -> None:
    task_id = await _claimed_task(store)
    hours = 5 * 3600 * 10**9  # durations are 64-bit nanoseconds
    await store.record_command_results(
        task_id,
        [
            CommandResult("a", CommandStatus.EXECUTING),
            CommandResult("b", CommandStatus.EXECUTING),
            CommandResult("a", CommandStatus.COMPLETED, hours),
        ],
    )
    await store.record_command_results(
        task_id,
        [CommandResult("c", CommandStatus.SKIPPED), CommandResult("b", CommandStatus.FAILED, 3)],
    )
    task = await store.get_task(task_id)
    assert task is not None
    assert task.command_results == (
        CommandResult("a", CommandStatus.COMPLETED, hours),
        CommandResult("b", CommandStatus.FAILED, 3),
        CommandResult("c", CommandStatus.SKIPPED),
    )


async def test_command_results_of_an_unknown_task_are_refused(store: ControllerStore) -> None:
    with pytest.raises(NoSuchTaskError):
        await store.record_command_results("4242", [CommandResult("a", CommandStatus.COMPLETED)])


async def test_a_final_status_is_never_overwritten(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    assert await store.finish_task(task_id, TaskStatus.FAILED, "no such image")
    assert not await store.finish_task(task_id, TaskStatus.COMPLETED)
    assert not await store.set_status(task_id, {TaskStatus.EXECUTING}, TaskStatus.COMPLETED)
    task = await store.get_task(task_id)
    assert task is not None
    assert (task.status, task.failure_message) == (TaskStatus.FAILED, "no such image")


async def test_finishing_with_a_status_that_is_not_final_is_a_programming_error(
    store: ControllerStore,
) -> None:
    task_id = await _claimed_task(store)
    with pytest.raises(ValueError, match="EXECUTING"):
        await store.finish_task(task_id, TaskStatus.EXECUTING)


async def test_a_failed_task_holds_its_worker_until_it_is_stopped_once(
    store: ControllerStore, clock: FakeClock
) -> None:
    task_id = await _claimed_task(store)
    await store.finish_task(task_id, TaskStatus.FAILED, "policy")
    assert [t.id for t in await store.tasks_of_worker("w1")] == [task_id]
    clock.advance(3)
    stopped = (await store.stop_task(task_id, TaskStatus.COMPLETED)).stopped
    assert stopped is not None
    assert (stopped.status, stopped.stopped_at) == (TaskStatus.FAILED, clock.now())
    assert not stopped.occupies_worker
    assert await store.tasks_of_worker("w1") == []
    assert await store.held_task_ids("w1") == []
    assert (await store.stop_task(task_id, TaskStatus.COMPLETED)).stopped is None


async def test_stopping_a_running_task_finalises_it(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    await store.mark_started(task_id)
    stopped = (await store.stop_task(task_id, TaskStatus.COMPLETED)).stopped
    assert stopped is not None
    assert stopped.status is TaskStatus.COMPLETED
    build = await store.get_build(stopped.build_id)
    assert build is not None
    assert build.status is TaskStatus.COMPLETED


async def test_an_unclaimed_task_cannot_be_stopped(store: ControllerStore) -> None:
    assert (await store.stop_task(await _queued_task(store), TaskStatus.ABORTED)).stopped is None


async def test_cancelling_a_queued_task_aborts_it_at_once(store: ControllerStore) -> None:
    task_id = await _queued_task(store)
    cancelled = await store.request_cancel(task_id)
    assert cancelled is not None
    assert cancelled.status is TaskStatus.ABORTED
    assert await store.queued_tasks() == []
    assert await store.claim_task(task_id, "w1") is None


async def test_cancelling_a_claimed_task_asks_its_worker_to_stop_it(
    store: ControllerStore,
) -> None:
    task_id = await _claimed_task(store)
    other = await _claimed_task(store)
    await store.mark_started(task_id)
    cancelled = await store.request_cancel(task_id)
    assert cancelled is not None
    assert (cancelled.status, cancelled.cancel_requested) == (TaskStatus.EXECUTING, True)
    assert await store.tasks_to_stop_for("w1") == [task_id]
    assert await store.tasks_to_stop_for("w2") == []
    stopped = (await store.stop_task(task_id, TaskStatus.ABORTED)).stopped
    assert stopped is not None
    assert stopped.status is TaskStatus.ABORTED
    assert await store.tasks_to_stop_for("w1") == []
    assert other not in await store.tasks_to_stop_for("w1")


async def test_cancelling_a_final_task_changes_nothing(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    await store.stop_task(task_id, TaskStatus.COMPLETED)
    cancelled = await store.request_cancel(task_id)
    assert cancelled is not None
    assert (cancelled.status, cancelled.cancel_requested) == (TaskStatus.COMPLETED, False)


async def test_a_lost_worker_gives_back_unstarted_tasks_and_fails_started_ones(
    store: ControllerStore,
) -> None:
    unstarted = await _claimed_task(store, "lost")
    started = await _claimed_task(store, "lost")
    cancelled = await _claimed_task(store, "lost")
    reported_failed = await _claimed_task(store, "lost")
    elsewhere = await _claimed_task(store, "alive")
    await store.mark_started(started)
    await store.request_cancel(cancelled)
    await store.finish_task(reported_failed, TaskStatus.FAILED, "instance error")

    released = {task.id: task for task in await store.release_worker("lost")}

    assert set(released) == {unstarted, started, cancelled, reported_failed}
    requeued = released[unstarted]
    assert (requeued.status, requeued.worker, requeued.client_secret) == (
        TaskStatus.SCHEDULED,
        None,
        "",
    )
    assert (released[started].status, released[started].failure_message) == (
        TaskStatus.FAILED,
        lost_worker_message("lost"),
    )
    assert released[cancelled].status is TaskStatus.ABORTED
    assert (released[reported_failed].status, released[reported_failed].failure_message) == (
        TaskStatus.FAILED,
        "instance error",
    )
    assert await store.tasks_of_worker("lost") == []
    assert await store.held_task_ids("lost") == []
    assert [t.id for t in await store.queued_tasks()] == [unstarted]
    assert [t.id for t in await store.tasks_of_worker("alive")] == [elsewhere]
    assert await store.held_task_ids("alive") == [elsewhere]
    assert await store.release_worker("lost") == []
    again = await store.claim_task(unstarted, "alive")
    assert again is not None
    assert again.client_secret != requeued.client_secret


async def test_a_workers_own_drain_ends_when_it_registers_again_an_operators_pause_does_not(
    store: ControllerStore,
) -> None:
    await store.upsert_worker("w1", {}, {}, hash_token("s1"))
    drained = await store.set_disabled("w1", True, until_register=True)
    assert drained is not None
    assert drained.disabled
    restarted = await store.upsert_worker("w1", {}, {}, hash_token("s2"))
    assert not restarted.disabled
    # An operator's pause, then the worker drains on SIGTERM: the pause outlives the restart.
    await store.set_disabled("w1", True)
    await store.set_disabled("w1", True, until_register=True)
    assert (await store.upsert_worker("w1", {}, {}, hash_token("s3"))).disabled
    # A drain turned into an operator's pause is not cleared by the next registration either.
    await store.set_disabled("w1", False)
    await store.set_disabled("w1", True, until_register=True)
    await store.set_disabled("w1", True)
    assert (await store.upsert_worker("w1", {}, {}, hash_token("s4"))).disabled
    # A resume after a drain leaves nothing behind: a later pause is an operator's again.
    await store.set_disabled("w1", True, until_register=True)
    resumed = await store.set_disabled("w1", False)
    assert resumed is not None
    assert not resumed.disabled
    await store.set_disabled("w1", True)
    assert (await store.upsert_worker("w1", {}, {}, hash_token("s5"))).disabled
    assert await store.set_disabled("nobody", True, until_register=True) is None


async def test_workers_register_poll_pause_and_keep_their_pause_on_re_registration(
    store: ControllerStore, clock: FakeClock
) -> None:
    registered = await store.upsert_worker("w1", {"os": "linux"}, {"cpu": 4}, hash_token("s1"))
    assert (registered.registered_at, registered.last_seen) == (clock.now(), clock.now())
    assert dict(registered.resources_total) == {"cpu": 4.0}
    assert token_matches("s1", registered.session_token_hash)
    assert not token_matches("s2", registered.session_token_hash)
    clock.advance(10)
    checked_in = await store.check_in_worker(
        "w1", hash_token("s1"), {"cpu": 2}, ["7", "8"], queue_limit=1
    )
    assert checked_in is not None
    touched = checked_in.worker
    assert (touched.name, touched.last_seen) == ("w1", clock.now())
    assert (dict(touched.resources_in_use), touched.running_task_ids) == ({"cpu": 2.0}, ("7", "8"))
    assert dict(touched.labels) == {"os": "linux"}
    assert await store.get_worker("w1") == touched
    assert await store.check_in_worker("nobody", hash_token("s1"), {}, [], queue_limit=1) is None
    paused = await store.set_disabled("w1", True)
    assert paused is not None
    assert paused.disabled
    assert await store.set_disabled("nobody", True) is None
    clock.advance(10)
    again = await store.upsert_worker("w1", {"os": "darwin"}, {}, hash_token("s2"))
    assert again.disabled
    assert dict(again.labels) == {"os": "darwin"}
    assert token_matches("s2", again.session_token_hash)
    assert again.running_task_ids == ("7", "8")
    await store.upsert_worker("a0", {}, {}, hash_token("s3"))
    assert [w.name for w in await store.list_workers()] == ["a0", "w1"]
    assert await store.get_worker("w1") == again
    assert await store.get_worker("nobody") is None


async def test_the_session_token_is_never_stored_in_plain(
    store: ControllerStore, backend: StoreBackend
) -> None:
    await store.upsert_worker("w1", {}, {}, hash_token("plain-session-secret"))
    worker = await store.get_worker("w1")
    assert worker is not None
    assert "plain-session-secret" not in worker.session_token_hash


async def test_a_generated_token_is_stored_by_the_first_start_only(
    store: ControllerStore, backend: StoreBackend, clock: FakeClock
) -> None:
    assert await store.get_setting(REGISTRATION_TOKEN_KEY) is None
    assert await store.put_setting_if_absent(REGISTRATION_TOKEN_KEY, hash_token("first"))
    second = await backend.open(clock)
    try:
        assert not await second.put_setting_if_absent(REGISTRATION_TOKEN_KEY, hash_token("other"))
        stored = await second.get_setting(REGISTRATION_TOKEN_KEY)
    finally:
        await second.aclose()
    assert stored is not None
    assert token_matches("first", stored)
    await store.set_setting(REGISTRATION_TOKEN_KEY, hash_token("given"))
    assert await store.get_setting(REGISTRATION_TOKEN_KEY) == hash_token("given")


async def test_reopening_the_database_keeps_everything(
    store: ControllerStore, backend: StoreBackend, clock: FakeClock
) -> None:
    build = await store.create_build(
        BuildSpec(tasks=(BUILD_TASK, TEST_TASK), environment={"E": "1"})
    )
    claimed = await store.claim_task(build.tasks[0].id, "w1")
    await store.append_log(build.tasks[0].id, "main", b"hello\n")
    await store.upsert_worker("w1", {"os": "linux"}, {"cpu": 4}, hash_token("s"))
    await store.set_setting("k", "v")
    await store.aclose()
    reopened = await backend.open(clock)
    try:
        again = await reopened.get_build(build.id)
        assert again is not None
        assert again.tasks[0] == claimed
        assert again.tasks[1] == build.tasks[1]
        assert await reopened.read_log(build.tasks[0].id, "main") == b"hello\n"
        assert await reopened.get_worker("w1") is not None
        assert await reopened.get_setting("k") == "v"
    finally:
        await reopened.aclose()
