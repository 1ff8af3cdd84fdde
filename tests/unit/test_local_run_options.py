"""``cirrus run``'s flags: variables from ``-e`` and ``--env-file``, affected files, output."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.local_run_options import (
    LocalRunError,
    OutputFormat,
    affected_files,
    env_arguments,
    env_file,
    resolve_output,
)


def test_env_flags_set_values_and_pass_through_this_processs_own() -> None:
    environ = {"HOME_VALUE": "here"}
    values = ["A=1", "B=x=y", "HOME_VALUE", "UNSET_ONE", "A=2", "EMPTY="]
    assert env_arguments(values, environ) == {
        "A": "2",
        "B": "x=y",
        "HOME_VALUE": "here",
        "EMPTY": "",
    }


@pytest.mark.parametrize("value", ["=1", " A=1", "A\nB=1"])
def test_an_env_flag_without_a_name_is_a_usage_error(value: str) -> None:
    with pytest.raises(LocalRunError) as caught:
        env_arguments([value], {})
    assert caught.value.exit_code == 2
    assert "-e/--env" in str(caught.value)


def test_an_env_file_has_assignments_pass_throughs_comments_and_blank_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vars.env"
    path.write_text("# settings\nA=1\n\n  \nPASSED\nB=two words\r\n")
    assert env_file(str(path), {"PASSED": "p"}) == {"A": "1", "PASSED": "p", "B": "two words"}


def test_a_bad_env_file_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "vars.env"
    path.write_text("A=1\n=oops\n")
    with pytest.raises(LocalRunError) as caught:
        env_file(str(path), {})
    assert f"--env-file {path}, line 2" in str(caught.value)


def test_a_missing_env_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LocalRunError) as caught:
        env_file(str(tmp_path / "absent.env"), {})
    assert caught.value.exit_code == 2
    assert "cannot read" in str(caught.value)
    assert "absent.env" in str(caught.value)


def test_affected_files_are_split_on_commas_in_order_without_repeats() -> None:
    assert affected_files(["a.py,b/c.txt", " d ,,a.py"]) == ("a.py", "b/c.txt", "d")


@pytest.mark.parametrize(
    ("requested", "terminal", "environ", "expected"),
    [
        ("auto", True, {}, OutputFormat.INTERACTIVE),
        ("auto", False, {}, OutputFormat.SIMPLE),
        ("auto", True, {"CI": "true"}, OutputFormat.SIMPLE),
        ("auto", False, {"GITHUB_ACTIONS": "true"}, OutputFormat.GITHUB_ACTIONS),
        ("simple", True, {"GITHUB_ACTIONS": "true"}, OutputFormat.SIMPLE),
        ("interactive", False, {}, OutputFormat.INTERACTIVE),
    ],
)
def test_the_output_format_follows_the_flag_else_the_environment(
    requested: str, terminal: bool, environ: dict[str, str], expected: OutputFormat
) -> None:
    assert resolve_output(requested, terminal, environ) is expected
