"""Sizes, Go durations and Cirrus memory amounts (``domain.units``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.units import (
    parse_duration_nanoseconds,
    parse_duration_seconds,
    parse_memory_mib,
    parse_size_bytes,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("640 KB", 640_000),
        ("640 kB", 640_000),
        ("640K", 640_000),
        ("100 MB", 100_000_000),
        ("100M", 100_000_000),
        ("100 mb", 100_000_000),
        ("100 MiB", 104_857_600),
        ("100 mib", 104_857_600),
        ("1 GiB", 1_073_741_824),
        ("1 GB", 1_000_000_000),
        ("1G", 1_000_000_000),
        ("2 TB", 2_000_000_000_000),
        ("1 TiB", 1_099_511_627_776),
        ("1 KiB", 1024),
        ("1024", 1024),
        ("1024 B", 1024),
        ("0", 0),
        ("1.5 MB", 1_500_000),
        ("0.5 KiB", 512),
        ("1,000 KB", 1_000_000),
        ("  10 MB  ", 10_000_000),
        ("1.0001 B", 1),
    ],
)
def test_a_size_is_parsed_with_si_and_iec_units(text: str, expected: int) -> None:
    assert parse_size_bytes(text) == expected


@pytest.mark.parametrize("text", ["banana", "", "MB", "10 XB", "-1 MB", "1.2.3 MB", "10 M B"])
def test_a_malformed_size_is_refused_with_the_text_in_the_message(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size_bytes(text)


def test_an_unknown_size_unit_is_named_in_the_message() -> None:
    with pytest.raises(ValueError, match="unknown unit 'XB'"):
        parse_size_bytes("10 XB")


@given(st.integers(min_value=0, max_value=10**12))
def test_a_kib_is_always_1024_bytes_and_a_kb_1000(count: int) -> None:
    assert parse_size_bytes(f"{count} KiB") == count * 1024
    assert parse_size_bytes(f"{count}KB") == count * 1000
    assert parse_size_bytes(str(count)) == count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", 600),
        ("3h", 10_800),
        ("90s", 90),
        ("600s", 600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("2h45m30s", 9930),
        ("500ms", 0),
        ("1500ms", 1),
        ("0", 0),
        ("0s", 0),
        ("+5s", 5),
        (".5m", 30),
        ("1m0.5s", 60),
    ],
)
def test_a_go_duration_is_parsed_to_whole_seconds(text: str, expected: int) -> None:
    assert parse_duration_seconds(text) == expected


def test_sub_second_units_are_exact_in_nanoseconds() -> None:
    assert parse_duration_nanoseconds("1ms2us3ns") == 1_002_003
    assert parse_duration_nanoseconds("1µs") == 1000


def test_a_plain_number_without_unit_is_refused_as_missing_unit() -> None:
    with pytest.raises(ValueError, match="missing unit"):
        parse_duration_seconds("600")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("10x", "unknown unit 'x'"),
        ("10 m", "unknown unit"),
        ("-5s", "negative"),
        ("h", "expected a number"),
        (".s", "expected a number"),
        ("1h30", "missing unit"),
        ("ten minutes", "expected a number"),
    ],
)
def test_a_malformed_duration_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration_seconds(text)


@given(
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_hours_minutes_and_seconds_add_up(hours: int, minutes: int, seconds: int) -> None:
    assert parse_duration_seconds(f"{hours}h{minutes}m{seconds}s") == (
        hours * 3600 + minutes * 60 + seconds
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12_288),
        ("12", 12_288),
        (99, 99 * 1024),
        (100, 100),
        (16384, 16_384),
        ("16384", 16_384),
        ("4G", 4096),
        ("4g", 4096),
        ("4GB", 4096),
        ("4Gi", 4096),
        ("4096M", 4096),
        ("4096mb", 4096),
        ("4096Mi", 4096),
        ("8m", 8),
        (0, 0),
    ],
)
def test_a_memory_amount_is_parsed_to_mib(value: str | int, expected: int) -> None:
    assert parse_memory_mib(value) == expected


@pytest.mark.parametrize("value", ["4T", "4 KB", "4GiB", "4 G"])
def test_a_memory_amount_with_another_suffix_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="unsupported digital information unit suffix"):
        parse_memory_mib(value)


@pytest.mark.parametrize("value", ["", "G", "1.5G", "-4G", "lots"])
def test_a_memory_amount_that_is_not_a_whole_number_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="invalid memory"):
        parse_memory_mib(value)


@given(st.integers(min_value=100, max_value=10**9))
def test_a_bare_memory_amount_from_100_up_is_mib(amount: int) -> None:
    assert parse_memory_mib(amount) == amount
    assert parse_memory_mib(f"{amount}M") == amount


@given(st.integers(min_value=0, max_value=99))
def test_a_bare_memory_amount_below_100_is_gib(amount: int) -> None:
    assert parse_memory_mib(amount) == amount * 1024 == parse_memory_mib(f"{amount}G")
