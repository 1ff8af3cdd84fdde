"""Resource modifiers: matching (spec §8), the original's acquire tests (§10.3) and ownership."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from domain.modifiers import ModifierPool, ResourceModifier, modifier_matches
from domain.protocol import frozen_float_map


def modifier(match: dict[str, float], *run_args: str) -> ResourceModifier:
    return ResourceModifier(match=frozen_float_map(match), run_args=run_args)


# --- matching -------------------------------------------------------------------------------


def test_an_empty_match_matches_any_request() -> None:
    assert modifier_matches(modifier({}), {})
    assert modifier_matches(modifier({}), {"gpu": 7, "cpu": 1})


def test_a_request_at_most_the_match_value_matches() -> None:
    assert modifier_matches(modifier({"gpu": 0.5}), {"gpu": 0.5})
    assert modifier_matches(modifier({"gpu": 0.5}), {"gpu": 0.25})
    assert modifier_matches(modifier({"gpu": 1}), {"gpu": 0.5})


def test_a_request_above_the_match_value_does_not_match() -> None:
    assert not modifier_matches(modifier({"gpu": 0.5}), {"gpu": 1})


def test_a_match_key_missing_from_the_request_is_no_match() -> None:
    assert not modifier_matches(modifier({"gpu": 1, "tpu": 1}), {"gpu": 1})
    assert not modifier_matches(modifier({"gpu": 1}), {})


def test_requested_keys_absent_from_the_match_are_ignored() -> None:
    assert modifier_matches(modifier({"gpu": 0.5}), {"gpu": 0.5, "tart-vms": 1, "cpu": 64})


MATCHES = st.dictionaries(st.sampled_from(["gpu", "tpu", "cpu"]), st.floats(0, 4), max_size=3)


@given(MATCHES, MATCHES, st.sampled_from(["gpu", "tpu", "cpu"]), st.floats(0, 4))
def test_a_smaller_request_still_matches_when_a_larger_one_does(
    match: dict[str, float], requested: dict[str, float], key: str, less: float
) -> None:
    smaller = dict(requested)
    if key in smaller:
        smaller[key] -= less
    if modifier_matches(modifier(match), requested):
        assert modifier_matches(modifier(match), smaller)


# --- spec §10.3, the original's resourcemodifier_test.go -------------------------------------


class TestAcquireSimple:
    def test_extra_keys_are_ignored_and_a_held_modifier_is_not_handed_out_twice(self) -> None:
        gpu = modifier({"gpu": 0.5})
        pool = ModifierPool([gpu])
        requested = {"tart-vms": 1.0, "gpu": 0.5}

        assert pool.acquire("task-1", requested) is gpu
        assert pool.acquire("task-2", requested) is None

        pool.release("task-1")
        assert pool.acquire("task-2", requested) is gpu


class TestAcquireIsNotConfusedByValues:
    def test_a_request_above_the_first_modifiers_value_skips_it(self) -> None:
        modifiers = [
            modifier({"gpu": 0.5}),
            modifier({"gpu": 1}, "--non-existent-argument-expected"),
            modifier({"gpu": 0.5}),
        ]
        acquired = ModifierPool(modifiers).acquire("task", {"gpu": 1})

        assert acquired is modifiers[1]
        assert acquired.run_args == ("--non-existent-argument-expected",)


class TestAcquireIsNotConfusedByKeys:
    def test_a_modifier_key_missing_from_the_request_skips_that_modifier(self) -> None:
        modifiers = [
            modifier({"gpu": 1, "non-existent-resource": 1}),
            modifier({"gpu": 1}, "--expected"),
            modifier({"gpu": 1, "non-existent-resource": 1}),
        ]
        assert ModifierPool(modifiers).acquire("task", {"gpu": 1}) is modifiers[1]


# --- acquiring in configuration order, owners --------------------------------------------------


def test_the_docs_example_gives_a_quarter_gpu_task_the_free_half_gpu_first() -> None:
    half, quarter_a, quarter_b = (
        modifier({"gpu": 0.5}),
        modifier({"gpu": 0.25}),
        modifier({"gpu": 0.25}),
    )
    pool = ModifierPool([half, quarter_a, quarter_b])

    assert pool.acquire("a", {"gpu": 0.25}) is half
    assert pool.acquire("b", {"gpu": 0.25}) is quarter_a
    assert pool.acquire("c", {"gpu": 0.25}) is quarter_b
    assert pool.acquire("d", {"gpu": 0.25}) is None


def test_equal_modifiers_are_still_separate_devices() -> None:
    first, second = modifier({"gpu": 1}, "--dev=0"), modifier({"gpu": 1}, "--dev=0")
    pool = ModifierPool([first, second])

    assert pool.acquire("a", {"gpu": 1}) is first
    assert pool.acquire("b", {"gpu": 1}) is second
    pool.release("a")
    assert pool.held() == {"b": second}
    assert pool.acquire("c", {"gpu": 1}) is first


def test_an_owner_that_already_holds_a_modifier_gets_the_same_one_back() -> None:
    first, second = modifier({}), modifier({})
    pool = ModifierPool([first, second])

    assert pool.acquire("task", {}) is first
    assert pool.acquire("task", {"gpu": 99}) is first
    assert pool.held() == {"task": first}
    assert pool.acquire("other", {}) is second


def test_no_configured_modifiers_means_none_is_acquired() -> None:
    pool = ModifierPool([])
    assert pool.acquire("task", {}) is None
    assert pool.held() == {}


def test_releasing_twice_or_for_an_unknown_owner_does_nothing() -> None:
    gpu = modifier({})
    pool = ModifierPool([gpu])
    pool.release("nobody")
    assert pool.acquire("task", {}) is gpu

    pool.release("task")
    pool.release("task")
    assert pool.held() == {}


def test_an_owner_can_only_release_what_it_acquired() -> None:
    gpu = modifier({})
    pool = ModifierPool([gpu])
    pool.acquire("standby", {})
    pool.release("task")
    assert pool.held() == {"standby": gpu}


def test_a_task_taking_over_the_standby_takes_over_its_modifier() -> None:
    gpu = modifier({"gpu": 1})
    pool = ModifierPool([gpu])
    pool.acquire("standby", {"gpu": 1})

    pool.transfer("standby", "task-7")

    assert pool.held() == {"task-7": gpu}
    pool.release("standby")
    assert pool.held() == {"task-7": gpu}
    pool.release("task-7")
    assert pool.held() == {}


def test_transferring_from_an_owner_holding_nothing_does_nothing() -> None:
    pool = ModifierPool([modifier({})])
    pool.transfer("standby", "task")
    assert pool.held() == {}


def test_transferring_to_oneself_keeps_the_modifier() -> None:
    gpu = modifier({})
    pool = ModifierPool([gpu])
    pool.acquire("standby", {})
    pool.transfer("standby", "standby")
    assert pool.held() == {"standby": gpu}


def test_transferring_to_an_owner_that_holds_one_already_is_refused() -> None:
    first, second = modifier({}), modifier({})
    pool = ModifierPool([first, second])
    pool.acquire("standby", {})
    pool.acquire("task", {})

    with pytest.raises(ValueError, match="already holds"):
        pool.transfer("standby", "task")
    assert pool.held() == {"standby": first, "task": second}


def test_held_is_a_copy() -> None:
    pool = ModifierPool([modifier({})])
    pool.acquire("task", {})
    pool.held().clear()
    assert list(pool.held()) == ["task"]


# --- state machine: exclusive ownership ---------------------------------------------------------


POOL_CONFIG = [
    modifier({"gpu": 0.5}),
    modifier({"gpu": 1}),
    modifier({"gpu": 0.5}),
    modifier({}),
    modifier({"gpu": 1, "tpu": 1}),
]
REQUESTS = st.dictionaries(
    st.sampled_from(["gpu", "tpu", "cpu"]), st.sampled_from([0.25, 0.5, 1, 2])
)


class ModifierOwnership(RuleBasedStateMachine):
    """A model of who holds which configured index, checked against the pool after every step."""

    owners = Bundle("owners")

    def __init__(self) -> None:
        super().__init__()
        self.pool = ModifierPool(POOL_CONFIG)
        self.model: dict[str, int] = {}
        self.counter = 0

    @rule(target=owners)
    def new_owner(self) -> str:
        self.counter += 1
        return f"owner-{self.counter}"

    @rule(owner=owners, requested=REQUESTS)
    def acquire(self, owner: str, requested: dict[str, float]) -> None:
        acquired = self.pool.acquire(owner, requested)
        if owner in self.model:
            assert acquired is POOL_CONFIG[self.model[owner]]
            return
        taken = set(self.model.values())
        expected = next(
            (
                i
                for i, m in enumerate(POOL_CONFIG)
                if i not in taken and modifier_matches(m, requested)
            ),
            None,
        )
        if expected is None:
            assert acquired is None
        else:
            assert acquired is POOL_CONFIG[expected]
            self.model[owner] = expected

    @rule(owner=owners)
    def release(self, owner: str) -> None:
        self.pool.release(owner)
        self.model.pop(owner, None)
        assert owner not in self.pool.held()

    @precondition(lambda self: bool(self.model))
    @rule(source=owners, target=owners)
    def transfer_to_a_fresh_owner(self, source: str) -> str:
        self.counter += 1
        fresh = f"owner-{self.counter}"
        self.pool.transfer(source, fresh)
        if source in self.model:
            self.model[fresh] = self.model.pop(source)
        return fresh

    @rule(owner=consumes(owners))
    def forget_after_release(self, owner: str) -> None:
        self.pool.release(owner)
        self.model.pop(owner, None)

    @invariant()
    def no_modifier_is_held_by_two_owners(self) -> None:
        held_ids = [id(m) for m in self.pool.held().values()]
        assert len(held_ids) == len(set(held_ids))

    @invariant()
    def the_pool_agrees_with_the_model(self) -> None:
        assert self.pool.held() == {o: POOL_CONFIG[i] for o, i in self.model.items()}
        assert {o: id(m) for o, m in self.pool.held().items()} == {
            o: id(POOL_CONFIG[i]) for o, i in self.model.items()
        }

    @rule()
    def release_everyone(self) -> None:
        for owner in list(self.pool.held()):
            self.pool.release(owner)
        self.model.clear()
        assert self.pool.held() == {}
        # Everything is free again: a request every modifier matches gets them all, in order.
        everything = {"gpu": 0.5, "tpu": 1.0}
        probes = [f"probe-{i}" for i in range(len(POOL_CONFIG))]
        assert [self.pool.acquire(p, everything) for p in probes] == POOL_CONFIG
        assert self.pool.acquire("probe-extra", everything) is None
        for probe in probes:
            self.pool.release(probe)


TestModifierOwnership = ModifierOwnership.TestCase
