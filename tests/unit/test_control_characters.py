"""Control characters in worker names and labels: found, escaped for logs, refused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.control_characters import first_control_character, label_problem, printable


def test_a_newline_a_carriage_return_and_an_escape_are_escaped() -> None:
    assert printable("w1\nINFO forged\r\x1b[2J") == "w1\\nINFO forged\\r\\x1b[2J"


def test_unicode_line_separators_and_c1_controls_are_escaped() -> None:
    assert printable("a\u2028b\u2029c\x85d") == "a\\u2028b\\u2029c\\x85d"


def test_an_ordinary_name_is_left_as_it_is() -> None:
    assert printable("mac-mini-1 (büro) ✓") == "mac-mini-1 (büro) ✓"


def test_a_backslash_is_escaped_so_that_no_name_passes_for_an_escaped_one() -> None:
    assert printable("a\\nb") != printable("a\nb")


@given(st.text())
def test_an_escaped_text_holds_no_control_character(text: str) -> None:
    assert first_control_character(printable(text)) is None


@given(st.text(), st.text())
def test_escaping_tells_different_texts_apart(first: str, second: str) -> None:
    assert (printable(first) == printable(second)) == (first == second)


def test_labels_without_control_characters_pass() -> None:
    assert label_problem({"name": "w1", "os": "linux"}) is None


def test_a_name_with_a_newline_is_refused_naming_the_label_and_the_character() -> None:
    problem = label_problem({"name": "w1\nforged"})
    assert problem is not None
    assert "label 'name'" in problem
    assert "'w1\\nforged' holds the control character '\\n'" in problem
    assert "\n" not in problem


def test_a_label_key_with_a_tab_is_refused() -> None:
    problem = label_problem({"gpu\t": "yes"})
    assert problem is not None
    assert problem.startswith("label name 'gpu\\t' holds the control character '\\t'")
