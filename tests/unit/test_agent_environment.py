"""The run-time environment rules of the Cirrus agent: command texts, CIRRUS_ENV, ``env``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.agent_environment import (
    CirrusEnvError,
    expand_for_command,
    expand_text,
    parse_cirrus_env,
    parse_env_output,
)


def known(values: dict[str, str]) -> Callable[[str], str | None]:
    return values.get


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A/${A}", "1/1"),
        ("$MISSING-x", "-x"),
        ("${MISSING:fallback}", "fallback"),
        ("${A:fallback}", "1"),
        ("%A%;", "1;"),
        ("cost $5 and $$", "cost  and "),
        ("a $ b, end $", "a $ b, end $"),
        ("${}x ${unclosed", "x unclosed"),
        ("$A_B $A-B", " 1-B"),
    ],
)
def test_a_command_text_is_expanded_once_like_gos_os_expand(text: str, expected: str) -> None:
    assert expand_text(text, known({"A": "1"})) == expected


def test_an_unknown_reference_can_be_kept_as_written_default_and_all() -> None:
    text = "$A ${NOPE:d} $NOPE %NOPE% $$"
    assert expand_text(text, known({"A": "1"}), keep_unknown=True) == "1 ${NOPE:d} $NOPE ${NOPE} $$"


def test_a_command_text_names_the_task_variables_before_the_base_environment() -> None:
    variables = {"HOME": "/task-home", "TOOL": "$NOT_AGAIN"}
    base = {"HOME": "/root", "PATH": "/usr/bin", "NOT_AGAIN": "x"}
    assert (
        expand_for_command("$HOME $PATH $TOOL", variables, base) == "/task-home /usr/bin $NOT_AGAIN"
    )


def test_cirrus_env_lines_set_variables_and_later_lines_win() -> None:
    text = "A=1\r\nB=x=y\nA=2\nEMPTY=\n"
    assert parse_cirrus_env(text) == {"A": "2", "B": "x=y", "EMPTY": ""}
    assert parse_cirrus_env("") == {}


@pytest.mark.parametrize("text", ["A=1\nnot a pair\n", "A=1\n\nB=2\n"])
def test_a_cirrus_env_line_without_an_equals_sign_rejects_the_whole_file(text: str) -> None:
    with pytest.raises(CirrusEnvError, match="KEY=VALUE format \\(line 2"):
        parse_cirrus_env(text)


def test_env_output_is_read_nul_separated_with_multi_line_values() -> None:
    output = "HOME=/root\0MULTI=a\nb=c\0PATH=/bin\0"
    assert parse_env_output(output) == {"HOME": "/root", "MULTI": "a\nb=c", "PATH": "/bin"}


def test_env_output_in_lines_joins_continuation_lines_to_the_value_above() -> None:
    output = "HOME=/root\nMULTI=a\n  more text\nPATH=/bin\n"
    assert parse_env_output(output) == {"HOME": "/root", "MULTI": "a\n  more text", "PATH": "/bin"}
