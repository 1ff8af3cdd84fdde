"""Re-run attempts and user tokens in the store, on SQLite and on PostgreSQL (migration 8)."""

from __future__ import annotations

import asyncio

import pytest

from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.rerun import RerunError, plan_rerun
from domain.store import ControllerStore, hash_token
from domain.tokens import HasUserTokens, Role, UserTokenStore
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration

BUILD = BuildSpec(
    tasks=(
        TaskSpec(name="build"),
        TaskSpec(name="test", depends_on=("build",)),
        TaskSpec(name="lint"),
    )
)


async def failed_build(store: ControllerStore) -> list[str]:
    """A stored build whose ``build`` task failed (``test`` skipped, ``lint`` completed)."""
    build = await store.create_build(BUILD)
    first, second, third = (task.id for task in build.tasks)
    assert await store.finish_task(first, TaskStatus.FAILED, "exit 1")
    assert await store.set_status(second, {TaskStatus.CREATED}, TaskStatus.SKIPPED)
    assert await store.finish_task(third, TaskStatus.COMPLETED)
    return [build.id, first, second, third]


def tokens_of(store: ControllerStore) -> UserTokenStore:
    """The user tokens on a store's database."""
    assert isinstance(store, HasUserTokens)
    return store.user_tokens()


async def test_a_rerun_adds_new_attempts_and_the_build_counts_the_latest(
    store: ControllerStore,
) -> None:
    build_id, first, second, third = await failed_build(store)
    before = await store.get_build(build_id)
    assert before is not None
    assert before.status is TaskStatus.FAILED
    plans = plan_rerun(await store.list_build_tasks(build_id), [first])
    created = await store.create_attempts(build_id, plans)
    assert [(t.name, t.attempt, t.rerun_of) for t in created] == [
        ("build", 2, first),
        ("test", 2, second),
    ]
    assert [t.status for t in created] == [TaskStatus.SCHEDULED, TaskStatus.CREATED]
    build = await store.get_build(build_id)
    assert build is not None
    assert [t.name for t in build.tasks] == ["build", "test", "lint"]
    assert [t.id for t in build.tasks] == [created[0].id, created[1].id, third]
    assert [t.id for t in build.earlier_attempts] == [first, second]
    assert build.status is TaskStatus.EXECUTING
    old = await store.get_task(first)
    assert old is not None
    assert old.status is TaskStatus.FAILED
    assert old.attempt == 1
    # The new attempt is in the queue like any task.
    assert created[0].id in [t.id for t in await store.queued_tasks()]


async def test_the_same_attempt_is_rerun_once_even_by_two_reruns_at_once(
    store: ControllerStore,
) -> None:
    build_id, first, *_ = await failed_build(store)
    plans = plan_rerun(await store.list_build_tasks(build_id), [first])
    outcomes = await asyncio.gather(
        store.create_attempts(build_id, plans),
        store.create_attempts(build_id, plans),
        return_exceptions=True,
    )
    assert sum(isinstance(outcome, list) for outcome in outcomes) == 1
    [refusal] = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert isinstance(refusal, RerunError)
    assert f"task {first} was re-run meanwhile" in str(refusal)
    assert len(await store.list_build_tasks(build_id)) == 5


async def test_attempts_survive_reopening_the_store(
    backend: StoreBackend, clock: FakeClock
) -> None:
    store = await backend.open(clock)
    try:
        build_id, first, *_ = await failed_build(store)
        plans = plan_rerun(await store.list_build_tasks(build_id), [first])
        [new, _] = await store.create_attempts(build_id, plans)
    finally:
        await store.aclose()
    again = await backend.open(clock)
    try:
        task = await again.get_task(new.id)
        assert task is not None
        assert (task.attempt, task.rerun_of) == (2, first)
    finally:
        await again.aclose()


async def test_user_tokens_are_kept_hashed_with_their_roles(
    store: ControllerStore, clock: FakeClock
) -> None:
    tokens = tokens_of(store)
    made = await tokens.add_user_token("ci", Role.OPERATOR, hash_token("secret-1"))
    clock.advance(5)
    await tokens.add_user_token("dashboard", Role.VIEWER, hash_token("secret-2"))
    assert (made.name, made.role, made.created_at) == ("ci", Role.OPERATOR, 1_000_000.0)
    assert await tokens.role_of_token(hash_token("secret-1")) is Role.OPERATOR
    assert await tokens.role_of_token(hash_token("secret-2")) is Role.VIEWER
    assert await tokens.role_of_token(hash_token("secret-3")) is None
    listed = await tokens.list_user_tokens()
    assert [(t.name, t.role) for t in listed] == [("ci", Role.OPERATOR), ("dashboard", Role.VIEWER)]
    assert "secret-1" not in repr(listed)
