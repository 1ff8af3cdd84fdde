"""Standby VM decisions (spec §7): when to create one, when a task hits it, when to retry, pre-pull.

Everything here is a pure decision. Clocks and random jitter are arguments, so the poll loop
owns time and the tests can state times explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.errors import ConfigError
from domain.isolation import Isolation, TartIsolation, VetuIsolation, isolation_kind
from domain.protocol import StandbyParameters
from domain.resources import fits

STANDBY_ISOLATION_KEY = "standby.isolation"

# Past this many doublings every delay is already at its cap; stops ``2 ** n`` overflowing.
_MAX_DOUBLINGS = 64


def is_hit(standby: StandbyParameters, task_isolation: Isolation) -> bool:
    """Return whether a task can take over the standby: its isolation equals the standby's exactly.

    Resources and warm-up are not compared (spec §7.3); equality is proto3 equality, which the
    isolation dataclasses implement.
    """
    return standby.isolation == task_isolation


def parameters_changed(current: StandbyParameters | None, new: StandbyParameters) -> bool:
    """Return whether server-pushed parameters differ from the current ones, as a whole message."""
    return current is None or current != new


def should_create(
    parameters: StandbyParameters | None,
    standby_exists: bool,
    running_tasks: int,
    free: Mapping[str, float],
) -> bool:
    """Return whether to create a standby now (spec §7.2).

    Only when standby parameters are configured, no standby exists, no task is in the task map
    (finished but undrained ones count as running) and the standby's resources fit into ``free``.
    """
    return (
        parameters is not None
        and not standby_exists
        and running_tasks == 0
        and fits(free, parameters.resources)
    )


def check_standby_isolation(isolation: Isolation | None) -> None:
    """Raise ConfigError unless a standby isolation is given and is Tart or Vetu (spec §7.1)."""
    if isolation is None:
        raise ConfigError(STANDBY_ISOLATION_KEY, "isolation configuration is required for standby")
    if not isinstance(isolation, TartIsolation | VetuIsolation):
        raise ConfigError(
            STANDBY_ISOLATION_KEY,
            "only Tart and Vetu instances are currently supported for standby, "
            f"got {isolation_kind(isolation)}",
        )


class StandbyBackoff:
    """Exponential delay between failed standby creations, so a bad standby cannot stop polling.

    The original skipped the whole poll iteration on every failure and retried at the next one
    (spec §7.2, §12.5). Here the poll loop keeps polling and only asks ``may_try`` before each
    attempt. After the n-th consecutive failure the delay is ``base * 2 ** (n - 1)``, capped at
    ``cap_seconds``, then shortened by up to half through the caller's ``jitter_fraction`` so that
    workers failing together spread out; the wait never exceeds the cap.
    """

    def __init__(self, base_seconds: float = 1.0, cap_seconds: float = 300.0) -> None:
        if base_seconds <= 0:
            raise ValueError(f"base_seconds must be positive, got {base_seconds}")
        if cap_seconds < base_seconds:
            raise ValueError(f"cap_seconds ({cap_seconds}) must be at least base ({base_seconds})")
        self._base = base_seconds
        self._cap = cap_seconds
        self._failures = 0
        self._next_attempt_at: float | None = None

    @property
    def failures(self) -> int:
        """Return the number of consecutive failures since the last success."""
        return self._failures

    @property
    def next_attempt_at(self) -> float | None:
        """Return the earliest time of the next attempt, or None when it may happen now."""
        return self._next_attempt_at

    def delay_seconds(self, failures: int) -> float:
        """Return the un-jittered delay after ``failures`` consecutive failures (0 for none)."""
        if failures <= 0:
            return 0.0
        if failures > _MAX_DOUBLINGS:
            return self._cap
        return min(self._cap, self._base * 2.0 ** (failures - 1))

    def failed(self, now: float, jitter_fraction: float) -> None:
        """Record a failure at ``now``; ``jitter_fraction`` is a random sample from [0, 1)."""
        if not 0.0 <= jitter_fraction < 1.0:
            raise ValueError(f"jitter_fraction must be in [0, 1), got {jitter_fraction}")
        self._failures += 1
        delay = self.delay_seconds(self._failures)
        self._next_attempt_at = now + delay * (1.0 - jitter_fraction / 2.0)

    def succeeded(self) -> None:
        """Record a successful attempt: the next failure starts from the base delay again."""
        self._failures = 0
        self._next_attempt_at = None

    def may_try(self, now: float) -> bool:
        """Return whether an attempt may be made at ``now``."""
        return self._next_attempt_at is None or now >= self._next_attempt_at


def prepull_due(
    last_check: float | None,
    now: float,
    interval_seconds: float,
    jitter_sample_seconds: float,
) -> bool:
    """Return whether the Tart pre-pull is due (spec §7.5).

    Always with a zero interval and before the first check; otherwise only strictly after
    ``last_check + interval + jitter``, where the caller samples the jitter afresh from
    [0, jitter) at each check (0 when no jitter is configured). The original drew the jitter
    but discarded it (an unused ``time.Time.Add`` result); this applies it as documented.
    """
    if interval_seconds == 0 or last_check is None:
        return True
    return now > last_check + interval_seconds + jitter_sample_seconds
