"""Liveness: a worker's silence counts from its last call or the controller's return, whichever
is later (issue 14, item 1)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.scheduling import is_alive, silence

times = st.floats(min_value=0, max_value=1e9, allow_nan=False)


def test_silence_counts_from_the_last_call_while_the_controller_was_up() -> None:
    assert silence(last_seen=100.0, watching_since=50.0, now=130.0) == 30.0


def test_silence_counts_from_the_controllers_return_after_an_outage() -> None:
    assert silence(last_seen=100.0, watching_since=190.0, now=200.0) == 10.0


def test_a_worker_silent_through_an_outage_longer_than_the_window_is_still_alive() -> None:
    # Last call at 100, controller away until 190 (90 s), window 60 s, now 200.
    assert is_alive(last_seen=100.0, watching_since=190.0, now=200.0, window=60.0)
    assert not is_alive(last_seen=100.0, watching_since=190.0, now=251.0, window=60.0)


def test_a_worker_silent_longer_than_the_window_without_an_outage_is_lost() -> None:
    assert not is_alive(last_seen=100.0, watching_since=0.0, now=161.0, window=60.0)
    assert is_alive(last_seen=100.0, watching_since=0.0, now=160.0, window=60.0)


@given(last_seen=times, watching_since=times, gap=st.floats(min_value=0, max_value=1e6))
def test_silence_never_exceeds_the_time_since_the_controller_returned(
    last_seen: float, watching_since: float, gap: float
) -> None:
    now = max(last_seen, watching_since) + gap
    assert silence(last_seen, watching_since, now) <= now - watching_since
    assert silence(last_seen, watching_since, now) <= now - last_seen
