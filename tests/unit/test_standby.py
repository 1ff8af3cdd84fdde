"""Standby decisions: hits, parameter changes, creation, config checks, backoff, pre-pull (§7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import ConfigError
from domain.isolation import (
    ContainerIsolation,
    Isolation,
    NoneIsolation,
    ParallelsIsolation,
    TartIsolation,
    TartVolume,
    UnsetIsolation,
    VetuHost,
    VetuIsolation,
)
from domain.protocol import StandbyParameters, Warmup, frozen_float_map
from domain.standby import (
    StandbyBackoff,
    check_standby_isolation,
    is_hit,
    parameters_changed,
    prepull_due,
    should_create,
)

TART = TartIsolation(image="ghcr.io/cirruslabs/macos-sonoma-base:latest", cpu=4, memory=8192)
VETU = VetuIsolation(image="ghcr.io/cirruslabs/ubuntu:latest", networking=VetuHost())


def standby(
    isolation: Isolation = TART,
    resources: dict[str, float] | None = None,
    warmup: Warmup | None = None,
) -> StandbyParameters:
    return StandbyParameters(
        isolation=isolation,
        resources=frozen_float_map(resources or {}),
        warmup=warmup or Warmup(),
    )


# --- hits (§7.3) ------------------------------------------------------------------------------


def test_a_task_with_an_equal_isolation_hits_the_standby() -> None:
    task_isolation = TartIsolation(
        image="ghcr.io/cirruslabs/macos-sonoma-base:latest", cpu=4, memory=8192
    )
    assert is_hit(standby(TART), task_isolation)


def test_resources_and_warmup_do_not_take_part_in_a_hit() -> None:
    parameters = standby(TART, {"tart-vms": 1}, Warmup(script="make warm", timeout_seconds=600))
    assert is_hit(parameters, TART)


def test_any_differing_field_is_a_miss() -> None:
    assert not is_hit(standby(TART), TartIsolation(image=TART.image, cpu=4, memory=4096))
    assert not is_hit(standby(TART), TartIsolation(image=TART.image, cpu=4, memory=8192, port=22))


def test_a_task_of_another_isolation_kind_is_a_miss() -> None:
    assert not is_hit(standby(TART), NoneIsolation())
    assert not is_hit(standby(TART), ContainerIsolation(image=TART.image))
    assert not is_hit(standby(TART), VetuIsolation(image=TART.image, cpu=4, memory=8192))


def test_volumes_are_compared_in_order() -> None:
    a, b = TartVolume(source="/a", target="/a"), TartVolume(source="/b", target="/b")
    parameters = standby(TartIsolation(image="i", volumes=(a, b)))
    assert is_hit(parameters, TartIsolation(image="i", volumes=(a, b)))
    assert not is_hit(parameters, TartIsolation(image="i", volumes=(b, a)))


# --- runtime updates (§7.4) -------------------------------------------------------------------


def test_parameters_are_changed_when_there_were_none() -> None:
    assert parameters_changed(None, standby())


def test_equal_parameters_are_unchanged() -> None:
    current = standby(TART, {"tart-vms": 1}, Warmup(script="x", timeout_seconds=60))
    assert not parameters_changed(current, standby(TART, {"tart-vms": 1.0}, Warmup("x", 60)))


def test_a_change_in_isolation_resources_or_warmup_is_a_change() -> None:
    current = standby(TART, {"tart-vms": 1}, Warmup(script="x", timeout_seconds=60))
    assert parameters_changed(current, standby(VETU, {"tart-vms": 1}, Warmup("x", 60)))
    assert parameters_changed(current, standby(TART, {"tart-vms": 2}, Warmup("x", 60)))
    assert parameters_changed(current, standby(TART, {}, Warmup("x", 60)))
    assert parameters_changed(current, standby(TART, {"tart-vms": 1}, Warmup("y", 60)))
    assert parameters_changed(current, standby(TART, {"tart-vms": 1}, Warmup("x", 61)))


# --- creation (§7.2) --------------------------------------------------------------------------


def test_a_standby_is_created_when_configured_absent_idle_and_fitting() -> None:
    assert should_create(standby(resources={"tart-vms": 1}), False, 0, {"tart-vms": 2})


def test_no_standby_is_created_without_parameters() -> None:
    assert not should_create(None, False, 0, {"tart-vms": 2})


def test_no_second_standby_is_created() -> None:
    assert not should_create(standby(), True, 0, {})


def test_no_standby_is_created_while_any_task_is_in_the_map() -> None:
    assert not should_create(standby(), False, 1, {"tart-vms": 2})


def test_no_standby_is_created_when_its_resources_do_not_fit() -> None:
    assert not should_create(standby(resources={"tart-vms": 1}), False, 0, {"tart-vms": 0.5})
    assert not should_create(standby(resources={"gpu": 1}), False, 0, {"tart-vms": 2})


def test_a_standby_without_resources_always_fits() -> None:
    assert should_create(standby(), False, 0, {"tart-vms": -1})


# --- configuration check (§7.1) ---------------------------------------------------------------


def test_tart_and_vetu_standbys_are_accepted() -> None:
    check_standby_isolation(TART)
    check_standby_isolation(VETU)


def test_a_missing_standby_isolation_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        check_standby_isolation(None)
    assert caught.value.key == "standby.isolation"
    assert caught.value.message == "isolation configuration is required for standby"


@pytest.mark.parametrize(
    ("isolation", "kind"),
    [
        (NoneIsolation(), "none"),
        (UnsetIsolation(), "unset"),
        (ContainerIsolation(image="debian"), "container"),
        (ParallelsIsolation(image="x"), "parallels"),
    ],
)
def test_other_standby_isolations_are_config_errors_naming_the_kind(
    isolation: Isolation, kind: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_standby_isolation(isolation)
    assert caught.value.key == "standby.isolation"
    assert caught.value.message == (
        f"only Tart and Vetu instances are currently supported for standby, got {kind}"
    )


# --- backoff ----------------------------------------------------------------------------------


def test_a_fresh_backoff_allows_an_attempt_at_once() -> None:
    backoff = StandbyBackoff()
    assert backoff.may_try(0.0)
    assert backoff.failures == 0
    assert backoff.next_attempt_at is None


def test_the_delay_doubles_with_each_failure_from_the_base() -> None:
    backoff = StandbyBackoff(base_seconds=2.0, cap_seconds=1000.0)
    backoff.failed(now=100.0, jitter_fraction=0.0)
    assert backoff.failures == 1
    assert not backoff.may_try(101.9)
    assert backoff.may_try(102.0)

    backoff.failed(now=102.0, jitter_fraction=0.0)
    assert not backoff.may_try(105.9)
    assert backoff.may_try(106.0)

    backoff.failed(now=106.0, jitter_fraction=0.0)
    assert backoff.next_attempt_at == 114.0


def test_the_delay_stops_growing_at_the_cap() -> None:
    backoff = StandbyBackoff(base_seconds=1.0, cap_seconds=300.0)
    for _ in range(20):
        backoff.failed(now=0.0, jitter_fraction=0.0)
    assert backoff.next_attempt_at == 300.0


def test_a_very_long_failure_streak_does_not_overflow() -> None:
    backoff = StandbyBackoff(base_seconds=1.0, cap_seconds=300.0)
    for _ in range(5000):
        backoff.failed(now=0.0, jitter_fraction=0.5)
    assert backoff.failures == 5000
    assert backoff.next_attempt_at == 225.0


def test_jitter_shortens_the_delay_by_up_to_half() -> None:
    backoff = StandbyBackoff(base_seconds=10.0, cap_seconds=300.0)
    backoff.failed(now=0.0, jitter_fraction=0.5)
    assert backoff.next_attempt_at == 7.5


@given(
    st.integers(min_value=1, max_value=200),
    st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_the_wait_stays_between_half_the_delay_and_the_cap(failures: int, jitter: float) -> None:
    backoff = StandbyBackoff(base_seconds=1.0, cap_seconds=300.0)
    for _ in range(failures):
        backoff.failed(now=0.0, jitter_fraction=jitter)
    wait = backoff.next_attempt_at
    assert wait is not None
    assert backoff.delay_seconds(failures) / 2 <= wait <= 300.0


def test_a_success_resets_the_backoff() -> None:
    backoff = StandbyBackoff(base_seconds=1.0, cap_seconds=300.0)
    for _ in range(5):
        backoff.failed(now=0.0, jitter_fraction=0.0)
    backoff.succeeded()
    assert backoff.failures == 0
    assert backoff.may_try(0.0)
    backoff.failed(now=50.0, jitter_fraction=0.0)
    assert backoff.next_attempt_at == 51.0


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 2.0])
def test_a_jitter_fraction_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter_fraction"):
        StandbyBackoff().failed(now=0.0, jitter_fraction=jitter)


def test_a_backoff_needs_a_positive_base_and_a_cap_at_least_the_base() -> None:
    with pytest.raises(ValueError, match="base_seconds"):
        StandbyBackoff(base_seconds=0.0)
    with pytest.raises(ValueError, match="cap_seconds"):
        StandbyBackoff(base_seconds=10.0, cap_seconds=5.0)


# --- pre-pull (§7.5, §10.2) -------------------------------------------------------------------


def test_the_default_configuration_always_needs_a_pre_pull() -> None:
    # TestNeedsPrePullDefaultConfiguration: zero interval, zero jitter.
    assert prepull_due(last_check=None, now=0.0, interval_seconds=0, jitter_sample_seconds=0)
    assert prepull_due(last_check=10.0, now=10.0, interval_seconds=0, jitter_sample_seconds=0)


@pytest.mark.parametrize("jitter_sample", [0.0, 1.5, 2.999])
def test_a_custom_interval_is_due_first_then_after_interval_and_jitter(
    jitter_sample: float,
) -> None:
    # TestNeedsPrePullCustomConfiguration: interval 3 s, jitter 3 s, the sample drawn from [0, 3).
    start = 1_000.0
    assert prepull_due(None, start, 3.0, jitter_sample)
    assert not prepull_due(start, start, 3.0, jitter_sample)
    assert prepull_due(start, start + 6.0, 3.0, jitter_sample)


def test_a_pre_pull_is_due_only_strictly_after_the_deadline() -> None:
    assert not prepull_due(100.0, 105.0, 3.0, 2.0)
    assert prepull_due(100.0, 105.001, 3.0, 2.0)


def test_the_jitter_sample_postpones_the_pre_pull() -> None:
    assert prepull_due(100.0, 104.0, 3.0, 0.0)
    assert not prepull_due(100.0, 104.0, 3.0, 1.5)
