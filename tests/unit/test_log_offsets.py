"""The offset arithmetic of ``AppendLogs``: a retry is applied once, an overlap adds its tail."""

from __future__ import annotations

import pytest

from domain.log_offsets import LogAppend, plan_append


def test_a_chunk_without_offset_is_appended_whole() -> None:
    assert plan_append(held=100, offset=None, length=10) == LogAppend(skip=0, gap=0)


def test_the_next_chunk_at_the_end_of_the_log_is_appended_whole() -> None:
    assert plan_append(held=100, offset=100, length=10) == LogAppend(skip=0, gap=0)
    assert plan_append(held=0, offset=0, length=10).fresh(10) == 10


def test_a_retried_chunk_that_was_applied_adds_nothing() -> None:
    plan = plan_append(held=110, offset=100, length=10)
    assert plan == LogAppend(skip=10, gap=0)
    assert plan.fresh(10) == 0


def test_a_chunk_older_than_the_last_one_adds_nothing() -> None:
    assert plan_append(held=500, offset=100, length=10).fresh(10) == 0


def test_an_overlapping_chunk_adds_only_its_tail() -> None:
    plan = plan_append(held=104, offset=100, length=10)
    assert plan == LogAppend(skip=4, gap=0)
    assert plan.fresh(10) == 6


def test_a_chunk_past_the_end_is_appended_whole_and_the_gap_is_measured() -> None:
    assert plan_append(held=100, offset=130, length=10) == LogAppend(skip=0, gap=30)


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        plan_append(held=0, offset=-1, length=1)
