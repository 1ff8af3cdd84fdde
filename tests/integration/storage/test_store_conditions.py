"""The store's side of task conditions, on both backends: tasks created ``SKIPPED`` by their
``skip`` condition, manual tasks waiting for ``trigger_task``, and the flags that round-trip."""

from __future__ import annotations

import pytest

from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.store import ControllerStore
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration

CONDITIONS = BuildSpec(
    tasks=(
        TaskSpec("lint", skip_reason="skip: changesIncludeOnly('doc/*')"),
        TaskSpec("test", alias="tests", allow_failures=True),
        TaskSpec("deploy", manual=True, depends_on=("tests",)),
        TaskSpec("release", manual=True),
    )
)


async def test_tasks_are_created_skipped_queued_or_waiting_by_their_conditions(
    store: ControllerStore,
) -> None:
    build = await store.create_build(CONDITIONS)

    lint, test, deploy, release = build.tasks
    assert [task.status for task in build.tasks] == [
        TaskStatus.SKIPPED,
        TaskStatus.SCHEDULED,
        TaskStatus.CREATED,
        TaskStatus.CREATED,
    ]
    assert [task.awaiting_trigger for task in build.tasks] == [False, False, True, True]
    assert lint.spec.skip_reason == "skip: changesIncludeOnly('doc/*')"
    assert lint.failure_message == ""
    assert (test.spec.alias, test.spec.allow_failures) == ("tests", True)
    assert deploy.spec.manual
    assert release.spec.manual
    assert [task.id for task in await store.queued_tasks()] == [test.id]


async def test_a_build_with_a_skipped_and_an_untriggered_manual_task_completes_without_them(
    store: ControllerStore,
) -> None:
    spec = BuildSpec(
        tasks=(TaskSpec("skipped", skip_reason="skip: true"), TaskSpec("later", manual=True))
    )
    build = await store.create_build(spec)

    assert build.status is TaskStatus.COMPLETED
    assert not build.tasks[0].waiting_for_trigger
    assert build.tasks[1].waiting_for_trigger


async def test_triggering_clears_the_wait_once_and_leaves_the_status_to_the_scheduler(
    store: ControllerStore, clock: FakeClock
) -> None:
    release = (await store.create_build(CONDITIONS)).tasks[3]
    clock.advance(5)

    triggered = await store.trigger_task(release.id)
    clock.advance(5)
    again = await store.trigger_task(release.id)

    assert triggered is not None
    assert again is not None
    assert (triggered.status, triggered.awaiting_trigger) == (TaskStatus.CREATED, False)
    assert triggered.updated_at == release.updated_at + 5
    assert again.updated_at == triggered.updated_at  # nothing left to clear
    assert not again.waiting_for_trigger


async def test_triggering_a_task_that_does_not_wait_changes_nothing(
    store: ControllerStore, clock: FakeClock
) -> None:
    test = (await store.create_build(CONDITIONS)).tasks[1]
    clock.advance(5)

    after = await store.trigger_task(test.id)

    assert after is not None
    assert (after.status, after.awaiting_trigger, after.updated_at) == (
        TaskStatus.SCHEDULED,
        False,
        test.updated_at,
    )


async def test_triggering_an_unknown_task_returns_none(store: ControllerStore) -> None:
    await store.create_build(CONDITIONS)

    assert await store.trigger_task("999999") is None
    assert await store.trigger_task("not-an-id") is None


async def test_a_trigger_is_kept_in_the_database(
    store: ControllerStore, backend: StoreBackend, clock: FakeClock
) -> None:
    build = await store.create_build(CONDITIONS)
    await store.trigger_task(build.tasks[2].id)

    other = await backend.open(clock)
    try:
        reread = await other.get_build(build.id)
    finally:
        await other.aclose()

    assert reread is not None
    assert [task.awaiting_trigger for task in reread.tasks] == [False, False, False, True]


async def test_a_waiting_manual_task_can_be_cancelled_like_any_unclaimed_task(
    store: ControllerStore,
) -> None:
    release = (await store.create_build(CONDITIONS)).tasks[3]

    cancelled = await store.request_cancel(release.id)

    assert cancelled is not None
    assert cancelled.status is TaskStatus.ABORTED
    assert not cancelled.waiting_for_trigger
