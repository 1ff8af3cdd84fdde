"""Wildcard matching of ``allowed-images`` and ``allowed-volumes`` patterns (spec §5.2)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.wildcard import match_any, match_simple


def reference_match(pattern: str, text: str) -> bool:
    """The §5.2 semantics written as a regular expression."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.fullmatch("".join(parts), text, flags=re.DOTALL) is not None


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("ghcr.io/cirruslabs/*", "ghcr.io/cirruslabs/macos-ventura-base:latest", True),
        ("ghcr.io/cirruslabs/*", "example.com/cirruslabs/macos-ventura-base:latest", False),
        ("ghcr.io/cirruslabs/*", "example.org/ghcr.io/cirruslabs/whatnot", False),
        ("ghcr.io/cirruslabs/*", "ghcr.io/cirruslabs/", True),
        ("ghcr.io/cirruslabs/*", "ghcr.io/cirruslabs", False),
        ("ghcr.io/*/macos-*", "ghcr.io/evil/x/macos-y", True),
        ("*/macos-*:latest", "ghcr.io/cirruslabs/macos-sonoma-base:latest", True),
        (
            "ghcr.io/cirruslabs/macos-sonoma-base",
            "ghcr.io/cirruslabs/macos-sonoma-base:latest",
            False,
        ),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("", "", True),
        ("", "x", False),
    ],
)
def test_every_row_of_the_wildcard_table_holds(pattern: str, text: str, expected: bool) -> None:
    assert match_simple(pattern, text) is expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/cirruslabs/macos-ventura-base:latest", True),
        ("example.com/cirruslabs/macos-ventura-base:latest", False),
        ("example.org/ghcr.io/cirruslabs/whatnot", False),
    ],
)
def test_the_config_fixture_images_are_judged_as_the_original_judges_them(
    image: str, expected: bool
) -> None:
    assert match_any(("ghcr.io/cirruslabs/*",), image) is expected


def test_a_lone_star_matches_everything_including_the_empty_text() -> None:
    assert match_simple("*", "")
    assert match_simple("*", "any/thing at:all")


def test_a_question_mark_past_the_end_is_no_match() -> None:
    assert not match_simple("abc?", "abc")
    assert not match_simple("?", "")
    assert not match_simple("*?", "")


def test_a_question_mark_stands_for_one_code_point_not_one_byte() -> None:
    assert match_simple("caf?", "café")
    assert match_simple("?", "😀")
    assert not match_simple("??", "😀")


def test_matching_is_case_sensitive() -> None:
    assert not match_simple("GHCR.io/*", "ghcr.io/x")


def test_a_star_matches_the_empty_run_in_the_middle() -> None:
    assert match_simple("a*b", "ab")


def test_a_pattern_built_to_backtrack_finishes_quickly_with_the_right_answer() -> None:
    pattern = "*a" * 40 + "b"
    assert not match_simple(pattern, "a" * 5000)
    assert match_simple(pattern, "a" * 5000 + "b")


def test_match_any_with_no_patterns_matches_nothing() -> None:
    assert not match_any((), "anything")


patterns = st.text(alphabet="ab/*?.é", max_size=12)
texts = st.text(alphabet="ab/.é\n", max_size=16)


@given(patterns, texts)
def test_matching_agrees_with_the_regular_expression_reference(pattern: str, text: str) -> None:
    assert match_simple(pattern, text) is reference_match(pattern, text)


@given(st.text(max_size=8), st.text(max_size=8))
def test_matching_arbitrary_text_agrees_with_the_reference(pattern: str, text: str) -> None:
    assert match_simple(pattern, text) is reference_match(pattern, text)


@given(st.text(alphabet="ab/.é", max_size=16))
def test_a_pattern_without_wildcards_matches_only_itself(text: str) -> None:
    assert match_simple(text, text)
    assert not match_simple(text, text + "x")
