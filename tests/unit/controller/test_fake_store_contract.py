"""The in-memory fakes keep the store contract: the SQL stores' contract tests, run on them.

Every test of the contract modules below that needs only a ``store`` and a ``clock`` (not a
second connection, a backend or child processes) is collected here again, with the fixtures of
this module: so a fake that drifts from what the SQL stores do fails the same test they pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType

import pytest

from tests.integration.storage import (
    test_store_attempts,
    test_store_conditions,
    test_store_contract,
    test_store_finished_tasks,
    test_store_log_offsets,
    test_store_logs,
    test_store_sources,
    test_store_submitter,
    test_store_task_calls,
    test_store_worker_policy,
)
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.fake_tasks import FakeClock

CONTRACT_MODULES = (
    test_store_attempts,
    test_store_conditions,
    test_store_contract,
    test_store_finished_tasks,
    test_store_log_offsets,
    test_store_logs,
    test_store_sources,
    test_store_submitter,
    test_store_task_calls,
    test_store_worker_policy,
)

SKIPPED = frozenset(
    {
        # Snapshots and user tokens are other ports than the narrow ones faked here.
        "test_a_snapshot_is_stored_in_chunks_and_read_back_exactly",
        "test_two_snapshots_get_different_ids_and_an_empty_one_is_allowed",
        "test_an_unknown_snapshot_is_none_and_yields_nothing",
        "test_a_user_token_is_found_by_its_hash_with_its_name",
        "test_user_tokens_are_kept_hashed_with_their_roles",
        # Measures the SQL stores' memory while streaming 50 MiB: nothing to learn of a fake.
        "test_a_50_mib_log_streams_in_bounded_chunks_and_memory",
    }
)
"""Contract tests left out, by name, so that none is left out silently."""


def runnable_on_a_fake(module: ModuleType) -> dict[str, Callable[..., object]]:
    """Return the tests of ``module`` whose fixtures are only ``store`` and ``clock``."""
    return {
        name: test
        for name, test in vars(module).items()
        if name.startswith("test_")
        and inspect.isfunction(test)
        and set(inspect.signature(test).parameters) <= {"store", "clock"}
        and name not in SKIPPED
    }


REUSED = {name: test for m in CONTRACT_MODULES for name, test in runnable_on_a_fake(m).items()}
globals().update(REUSED)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test says so."""
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> FakeStore:
    """A fresh in-memory store."""
    return FakeStore(clock)


def test_most_contract_tests_run_on_the_fakes_too() -> None:
    """Guards the selection: a rename of the fixtures must not leave the fakes untested."""
    assert len(REUSED) >= 60
    assert {name for m in CONTRACT_MODULES for name in vars(m)} >= SKIPPED
