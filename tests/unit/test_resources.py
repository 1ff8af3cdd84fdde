"""Resource arithmetic: sums, free amounts and whether a request fits (spec §6)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from domain.resources import fits, free_resources, sum_resources

KEYS = st.sampled_from(["cpu", "memory", "gpu", "tart-vms", "disk"])
AMOUNTS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
RESOURCE_MAPS = st.dictionaries(KEYS, AMOUNTS, max_size=5)


def test_the_sum_of_no_maps_is_empty() -> None:
    assert sum_resources([]) == {}


def test_the_sum_adds_per_key_and_keeps_keys_present_in_one_map_only() -> None:
    assert sum_resources([{"cpu": 2, "gpu": 0.5}, {"cpu": 1.5, "memory": 4096}]) == {
        "cpu": 3.5,
        "gpu": 0.5,
        "memory": 4096.0,
    }


def test_the_sum_is_exact_where_naive_float_addition_drifts() -> None:
    assert sum_resources([{"gpu": 0.1}, {"gpu": 0.2}, {"gpu": 0.3}]) == {"gpu": 0.6}


def test_the_sum_accepts_a_generator() -> None:
    assert sum_resources({"cpu": float(n)} for n in range(4)) == {"cpu": 6.0}


def test_an_overflowing_sum_is_infinite_instead_of_an_error() -> None:
    assert sum_resources([{"cpu": 1e308}, {"cpu": 1e308}]) == {"cpu": math.inf}


@given(st.lists(RESOURCE_MAPS, max_size=8), st.data())
def test_the_sum_does_not_depend_on_the_order_of_the_maps(
    maps: list[dict[str, float]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(maps))
    assert sum_resources(shuffled) == sum_resources(maps)


@given(st.lists(RESOURCE_MAPS, max_size=8))
def test_the_sum_has_exactly_the_keys_of_its_maps(maps: list[dict[str, float]]) -> None:
    assert set(sum_resources(maps)) == {key for m in maps for key in m}


def test_free_is_total_minus_in_use_per_key() -> None:
    assert free_resources({"cpu": 8, "memory": 16384}, {"cpu": 2}) == {
        "cpu": 6.0,
        "memory": 16384.0,
    }


def test_free_goes_negative_when_tasks_use_more_than_declared() -> None:
    assert free_resources({"cpu": 2}, {"cpu": 3}) == {"cpu": -1.0}


def test_a_key_used_but_never_declared_shows_up_as_negative_free() -> None:
    assert free_resources({"cpu": 2}, {"gpu": 1}) == {"cpu": 2.0, "gpu": -1.0}


@given(RESOURCE_MAPS, RESOURCE_MAPS)
def test_free_plus_in_use_gives_back_the_total_on_the_totals_keys(
    total: dict[str, float], in_use: dict[str, float]
) -> None:
    free = free_resources(total, in_use)
    for key, amount in total.items():
        assert math.isclose(free[key] + in_use.get(key, 0.0), amount, abs_tol=1e-6)


@given(RESOURCE_MAPS, RESOURCE_MAPS)
def test_free_has_the_keys_of_both_maps(total: dict[str, float], in_use: dict[str, float]) -> None:
    assert set(free_resources(total, in_use)) == set(total) | set(in_use)


def test_an_empty_request_always_fits() -> None:
    assert fits({}, {})
    assert fits({"cpu": -3}, {})


def test_a_request_fits_when_every_key_is_available() -> None:
    assert fits({"cpu": 4, "memory": 8}, {"cpu": 4})
    assert not fits({"cpu": 4, "memory": 8}, {"cpu": 4, "memory": 8.5})


def test_a_key_missing_from_free_counts_as_zero() -> None:
    assert fits({}, {"gpu": 0})
    assert not fits({}, {"gpu": 0.5})
    assert fits({}, {"gpu": -1})


@given(RESOURCE_MAPS, RESOURCE_MAPS, KEYS, st.floats(min_value=0, max_value=1e6))
def test_more_free_never_turns_a_fit_into_a_misfit(
    free: dict[str, float], requested: dict[str, float], key: str, extra: float
) -> None:
    more = dict(free)
    more[key] = more.get(key, 0.0) + extra
    if fits(free, requested):
        assert fits(more, requested)


@given(RESOURCE_MAPS, RESOURCE_MAPS, KEYS, st.floats(min_value=0, max_value=1e6))
def test_asking_for_less_never_turns_a_fit_into_a_misfit(
    free: dict[str, float], requested: dict[str, float], key: str, less: float
) -> None:
    smaller = dict(requested)
    if key in smaller:
        smaller[key] -= less
    if fits(free, requested):
        assert fits(free, smaller)


@given(RESOURCE_MAPS, RESOURCE_MAPS)
def test_a_request_fits_exactly_when_it_is_within_free_on_every_key(
    free: dict[str, float], requested: dict[str, float]
) -> None:
    expected = all(requested[k] <= free.get(k, 0.0) for k in requested)
    assert fits(free, requested) is expected
