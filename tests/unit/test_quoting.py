"""Go ``%q`` quoting of the values named in policy messages."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.quoting import go_quote


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", '""'),
        ("ghcr.io/cirruslabs/macos:latest", '"ghcr.io/cirruslabs/macos:latest"'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\dir", r'"C:\\dir"'),
        ("it's", '"it\'s"'),
        ("\a\b\f\n\r\t\v", r'"\a\b\f\n\r\t\v"'),
        ("\x00\x1b\x7f", r'"\x00\x1b\x7f"'),
        ("\x85", r'"\u0085"'),
        ("\u00a0", r'"\u00a0"'),
        ("\u200b", r'"\u200b"'),
        ("\u2028", r'"\u2028"'),
        ("\ue000", r'"\ue000"'),
        ("\U000e0001", r'"\U000e0001"'),
        ("\U0010ffff", r'"\U0010ffff"'),
        ("café 日本語 😀", '"café 日本語 😀"'),
        ("\ud800", r'"\xed\xa0\x80"'),
    ],
)
def test_quoting_writes_what_go_percent_q_writes(text: str, expected: str) -> None:
    assert go_quote(text) == expected


printable_ascii = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\')


@given(st.text(alphabet=printable_ascii, max_size=30))
def test_printable_ascii_without_quotes_or_backslashes_is_only_wrapped(text: str) -> None:
    assert go_quote(text) == f'"{text}"'


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30))
def test_a_quoted_text_reads_back_as_the_same_text(text: str) -> None:
    # Go's escapes are a subset of Python's string literal escapes.
    assert ast.literal_eval(go_quote(text)) == text


@given(st.text(max_size=30))
def test_a_quoted_text_is_a_single_printable_line(text: str) -> None:
    quoted = go_quote(text)
    assert quoted.isprintable()
    assert quoted.startswith('"')
    assert quoted.endswith('"')
