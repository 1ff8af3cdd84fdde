"""How a script starts from CIRRUS_SHELL and CIRRUS_WORKING_DIR."""

from __future__ import annotations

import pytest

from domain.errors import InstanceError
from domain.script_launch import CUSTOM_SHELL_PROLOGUE, script_launch, working_directory


def test_without_cirrus_shell_a_script_runs_with_sh_stopping_at_the_first_failure() -> None:
    launch = script_launch("echo a\necho b", {}, "/work")
    assert launch.argv == ("/bin/sh", "-e")
    assert launch.text == "echo a\necho b\n"
    assert launch.needs_file
    assert launch.working_directory == "/work"


def test_cirrus_shell_is_split_into_words_and_the_script_gets_the_agents_prologue() -> None:
    launch = script_launch("echo a", {"CIRRUS_SHELL": "bash --noprofile -o 'x y'"}, "/work")
    assert launch.argv == ("bash", "--noprofile", "-o", "x y")
    assert launch.text == CUSTOM_SHELL_PROLOGUE + "echo a\n"
    assert launch.text.startswith("set -e\n(set -o pipefail) 2>/dev/null && set -o pipefail\n")


def test_direct_runs_the_command_line_as_words_without_a_shell_or_a_file() -> None:
    launch = script_launch('printf "%s|" "a b" c\\ d \'$HOME\'', {"CIRRUS_SHELL": "direct"}, "/w")
    assert launch.argv == ("printf", "%s|", "a b", "c d", "$HOME")
    assert not launch.needs_file


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CIRRUS_SHELL": "direct"}, "direct command line .* is empty"),
        ({"CIRRUS_SHELL": "'bash"}, "cannot split CIRRUS_SHELL"),
    ],
)
def test_an_unusable_shell_or_direct_line_is_one_clear_error(
    env: dict[str, str], message: str
) -> None:
    script = "" if env["CIRRUS_SHELL"] == "direct" else "true"
    with pytest.raises(InstanceError, match=message):
        script_launch(script, env, "/w")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "/work"), ("", "/work"), ("/src/app", "/src/app"), ("sub/../x", "/work/x")],
)
def test_cirrus_working_dir_moves_the_working_directory_relative_to_the_instances(
    value: str | None, expected: str
) -> None:
    env = {} if value is None else {"CIRRUS_WORKING_DIR": value}
    assert working_directory(env, "/work") == expected
    assert script_launch("true", env, "/work").working_directory == expected
