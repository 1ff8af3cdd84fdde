"""Cirrus conditions (``only_if``, ``skip``, ...): cases reasoned from the original's
boolevator (gval with string values, ParseBool, anchored case-insensitive regexps) and its
``changesInclude``/``changesIncludeOnly`` (Java NIO globs over the changed files)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cirrus_config.changes import PatternError, count_matching, glob_to_regex
from domain.cirrus_config.conditions import TokenKind, evaluate, tokenize
from domain.cirrus_config.nodes import CirrusConfigError, Position

PUSH = {
    "CIRRUS_BRANCH": "main",
    "CIRRUS_DEFAULT_BRANCH": "main",
    "CIRRUS_PR": "",
    "CIRRUS_TAG": "",
    "CIRRUS_REPO_NAME": "cirrus-cli",
    "CIRRUS_USER_COLLABORATOR": "true",
}


def failure(expression: str, environment: dict[str, str] | None = None) -> CirrusConfigError:
    with pytest.raises(CirrusConfigError) as caught:
        evaluate(expression, environment or {}, at=Position(7, 14))
    return caught.value


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'main' == 'main'", True),
        ("\"main\" == 'main'", True),
        ("'Main' == 'main'", False),
        ("$CIRRUS_BRANCH == 'main'", True),
        ("${CIRRUS_BRANCH} == 'main'", True),
        ("'main' == $CIRRUS_BRANCH", True),
        ("$CIRRUS_BRANCH == $CIRRUS_DEFAULT_BRANCH", True),
        ("$CIRRUS_PR == ''", True),
        ("$CIRRUS_TAG != ''", False),
    ],
)
def test_literals_and_variables_compare_as_strings(expression: str, expected: bool) -> None:
    assert evaluate(expression, PUSH) is expected


def test_an_unknown_variable_is_the_empty_string() -> None:
    assert evaluate("$NEVER_SET == ''", {}) is True
    assert evaluate("${NEVER_SET} != ''", {}) is False


def test_a_variable_is_expanded_with_the_other_variables_before_it_is_compared() -> None:
    environment = {"VM_IMAGE": "${UBUNTU}-${SUFFIX}", "UBUNTU": "ubuntu-20", "SUFFIX": "libpod"}

    assert evaluate("$VM_IMAGE == 'ubuntu-20-libpod'", environment) is True
    assert evaluate("$VM_IMAGE =~ '.*UBUNTU.*'", environment) is True


def test_a_variable_inside_a_literal_is_not_expanded() -> None:
    assert evaluate("'$CIRRUS_BRANCH' == 'main'", PUSH) is False
    assert (
        evaluate("'${CIRRUS_BRANCH}' == $LITERAL", {**PUSH, "LITERAL": "${CIRRUS_BRANCH}"}) is False
    )


def test_a_double_quoted_literal_may_hold_single_quotes() -> None:
    environment = {"CIRRUS_CHANGE_MESSAGE": "test 'foo'"}

    assert evaluate("$CIRRUS_CHANGE_MESSAGE == \"test 'foo'\"", environment) is True
    assert evaluate("$CIRRUS_CHANGE_MESSAGE =~ \".*test 'foo'.*\"", environment) is True


def test_a_backslash_keeps_a_quote_inside_a_literal_and_is_itself_kept() -> None:
    assert evaluate("$M == 'it\\'s'", {"M": "it\\'s"}) is True


def test_quotes_around_a_literal_are_all_removed() -> None:
    assert evaluate("\"'x'\" == 'x'", {}) is True
    assert evaluate("'\"\"' == ''", {}) is True


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true", True),
        ("false", False),
        ("'true'", True),
        ("true == 'true'", True),
        ("false == 'true'", False),
        ("($CIRRUS_PR == '') == true", True),
    ],
)
def test_true_and_false_are_the_strings_true_and_false(expression: str, expected: bool) -> None:
    assert evaluate(expression, PUSH) is expected


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("1", True)])
def test_a_condition_that_is_only_a_variable_reads_its_value(value: str, expected: bool) -> None:
    assert evaluate("$FLAG", {"FLAG": value}) is expected


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True"])
def test_every_spelling_of_true_that_go_accepts_is_true(value: str) -> None:
    assert evaluate("$FLAG", {"FLAG": value}) is True


@pytest.mark.parametrize("value", ["0", "f", "F", "FALSE", "false", "False"])
def test_every_spelling_of_false_that_go_accepts_is_false(value: str) -> None:
    assert evaluate("$FLAG", {"FLAG": value}) is False


@pytest.mark.parametrize("value", ["", "yes", "no", "on", "TrUe", " true", "2"])
def test_any_other_text_is_not_a_boolean(value: str) -> None:
    with pytest.raises(CirrusConfigError, match="needs true or false") as caught:
        evaluate("$FLAG", {"FLAG": value}, at=Position(2, 3))

    assert caught.value.at == Position(2, 3)


# --- regular expressions and `in` ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'release-2018.1' =~ 'release-.*'", True),
        ("'pull/123' =~ 'pull/.*'", True),
        ("'v2.0' =~ 'v\\d+\\.\\d+.*'", True),
        ("'1.2.34' =~ '\\d+\\.\\d+\\.\\d+'", True),
        ("'v1.2.3-rc1' =~ 'v\\d+(\\.\\d+){2}(-.*)?'", True),
        ("'something' =~ 's'", False),
        ("'something' =~ 'thing'", False),
        ("'' =~ '.*smh.*'", False),
        ("'not a regexp :)' =~ '.*actual regexp.*'", False),
    ],
)
def test_a_regular_expression_must_match_the_whole_value(expression: str, expected: bool) -> None:
    assert evaluate(expression, {}) is expected


def test_a_regular_expression_always_ignores_case() -> None:
    assert evaluate("'RELEASE/1.0' =~ 'release/.*'", {}) is True
    assert evaluate("'main' =~ '(?i)MAIN'", {}) is True


def test_a_regular_expression_matches_across_lines() -> None:
    changelog = "[tests] added tests\n[documentation] documented API\n[fixes] fixed bugs\n"

    assert evaluate("$LOG =~ '.*\\[documentation\\].*'", {"LOG": changelog}) is True
    assert evaluate("$LOG =~ '.*\\[security\\].*'", {"LOG": changelog}) is False


def test_a_newline_escape_in_a_pattern_finds_a_line_of_the_commit_message() -> None:
    condition = (
        "$CIRRUS_CHANGE_MESSAGE !=~ '.*\\nci-os-only:.*' || "
        "$CIRRUS_CHANGE_MESSAGE =~ '.*\\nci-os-only:[^\\n]*linux.*'"
    )

    assert evaluate(condition, {"CIRRUS_CHANGE_MESSAGE": "fix\n\nci-os-only: linux"}) is True
    assert evaluate(condition, {"CIRRUS_CHANGE_MESSAGE": "fix\n\nci-os-only: freebsd"}) is False
    assert evaluate(condition, {"CIRRUS_CHANGE_MESSAGE": "fix"}) is True


def test_the_end_of_a_pattern_does_not_match_before_a_final_newline() -> None:
    assert evaluate("$V =~ 'abc'", {"V": "abc\n"}) is False


def test_a_top_level_alternative_is_anchored_only_on_its_own_side_as_on_cirrus() -> None:
    assert evaluate("'mainline' =~ 'main|master'", {}) is True
    assert evaluate("'mainline' =~ '(main|master)'", {}) is False
    assert evaluate("'master' =~ '(main|master)'", {}) is True


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'release-2018.1' !=~ 'release-.*'", False),
        ("'release-.*' !=~ 'foo'", True),
        ("'not a regexp :)' !=~ '.*actual regexp.*'", True),
        ("$B != 'master' && $B !=~ 'release/.*'", False),
    ],
)
def test_the_negated_match_is_the_opposite_of_the_match(expression: str, expected: bool) -> None:
    assert evaluate(expression, {"B": "release/1.x"}) is expected


def test_a_bad_regular_expression_is_an_error_naming_it() -> None:
    error = failure("$CIRRUS_BRANCH =~ 'release/(.*'")

    assert "bad regular expression 'release/(.*'" in str(error)


def test_in_tells_whether_the_left_side_is_part_of_the_right_side() -> None:
    assert evaluate("'pull' in 'pull/123'", {}) is True
    assert evaluate("'pull' in 'pr/123'", {}) is False
    assert evaluate("'ci:skip' in $LABELS", {"LABELS": "bug,ci:skip"}) is True


# --- logic and precedence -----------------------------------------------------------------


@pytest.mark.parametrize(("left", "right"), [(a, b) for a in (True, False) for b in (True, False)])
def test_and_and_or_follow_their_truth_tables(left: bool, right: bool) -> None:
    words = {True: "true", False: "false"}

    assert evaluate(f"{words[left]} && {words[right]}", {}) is (left and right)
    assert evaluate(f"{words[left]} || {words[right]}", {}) is (left or right)


def test_and_binds_tighter_than_or() -> None:
    assert evaluate("true || false && false", {}) is True
    assert evaluate("false && false || true", {}) is True


def test_a_comparison_binds_tighter_than_and() -> None:
    assert evaluate("$A == 'x' && $B == 'y'", {"A": "x", "B": "y"}) is True


def test_comparisons_of_the_same_level_group_from_the_left() -> None:
    # ('x' == 'x') == 'true'; grouped from the right it would be 'x' == "false".
    assert evaluate("'x' == 'x' == 'true'", {}) is True
    assert evaluate("'a' != 'b' =~ 'TRUE'", {}) is True


def test_not_applies_to_the_next_operand_only() -> None:
    # (!$T) == 'x' is "false" == 'x'; !($T == 'x') would be true.
    assert evaluate("!$T == 'x'", {"T": "true"}) is False
    assert evaluate("!($T == 'x')", {"T": "true"}) is True


def test_not_negates_and_may_repeat() -> None:
    assert evaluate("!('Foo' == 'Foo')", {}) is False
    assert evaluate("!!true", {}) is True
    assert evaluate("! false", {}) is True


def test_parentheses_regroup() -> None:
    assert evaluate("(true || false) && false", {}) is False
    assert evaluate("true || (false && false)", {}) is True


def test_a_long_chain_of_or_finds_the_one_true_comparison() -> None:
    condition = (
        "$CIRRUS_USER_COLLABORATOR == 'false' || $CIRRUS_BRANCH == 'master' || "
        "$CIRRUS_BRANCH == 'staging' || $CIRRUS_BRANCH == 'main'"
    )

    assert evaluate(condition, PUSH) is True


def test_a_folded_multi_line_condition_with_nested_parentheses_is_read() -> None:
    condition = (
        "$CIRRUS_PR != '' ||\n"
        "( $CIRRUS_REPO_NAME == 'cirrus-cli' &&\n"
        "  (\n"
        "  $CIRRUS_BRANCH == 'master' ||\n"
        "  $CIRRUS_BRANCH =~ 'release/.*'\n"
        "  )\n"
        ")\n"
    )

    assert evaluate(condition, PUSH) is False
    assert evaluate(condition, {**PUSH, "CIRRUS_BRANCH": "release/2"}) is True
    assert evaluate(condition, {**PUSH, "CIRRUS_PR": "12"}) is True


def test_comments_are_ignored() -> None:
    assert evaluate("true // but not for long\n&& /* really */ false", {}) is False


def test_both_sides_are_evaluated_so_a_non_boolean_side_is_an_error_even_after_true() -> None:
    error = failure("true || $CIRRUS_PR")

    assert '|| needs true or false, not ""' in str(error)


@st.composite
def flat_conditions(draw: st.DrawFn) -> tuple[str, bool]:
    """A chain like ``true && !false || false`` and its value with && before ||."""
    groups = draw(
        st.lists(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1), min_size=1)
    )
    text = " || ".join(
        " && ".join(
            ("!" if negated else "") + ("true" if value else "false") for value, negated in group
        )
        for group in groups
    )
    expected = any(all(value != negated for value, negated in group) for group in groups)
    return text, expected


@given(flat_conditions())
def test_any_chain_of_and_or_not_reads_with_the_usual_precedence(case: tuple[str, bool]) -> None:
    text, expected = case

    assert evaluate(text, {}) is expected


@given(
    st.text(alphabet=st.characters(blacklist_characters="'\"\\\n$%", blacklist_categories=["Cs"]))
)
def test_a_variable_equals_the_literal_of_its_own_text(value: str) -> None:
    assert evaluate(f"$V == '{value}'", {"V": value}) is True


# --- changesInclude / changesIncludeOnly --------------------------------------------------

CHANGED = ["src/app/main.go", "src/app/util_test.go", "docs/index.md", "README.md"]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ("'**.go'", True),
        ("'src/**'", True),
        ("'docs/*'", True),
        ("'*.md'", True),
        ("'src/*'", False),
        ("'*.go'", False),
        ("'**/*.py'", False),
        ("'.cirrus.yml'", False),
        ("'.cirrus.yml', 'docs/**'", True),
        ("'.cirrus.yml', 'web/**', 'bin/*'", False),
        ("'**.{js,ts,md}'", True),
        ("'SRC/**'", False),
        ("'src/app/[mn]ain.go'", True),
        ("'src/app/m?in.go'", True),
    ],
)
def test_changes_include_tells_whether_any_changed_file_matches_a_pattern(
    patterns: str, expected: bool
) -> None:
    assert evaluate(f"changesInclude({patterns})", {}, CHANGED) is expected


def test_a_double_star_slash_pattern_needs_a_directory() -> None:
    assert evaluate("changesInclude('**/*.md')", {}, ["README.md"]) is False
    assert evaluate("changesInclude('**/*.md')", {}, ["docs/index.md"]) is True


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["doc/a.md", "doc/b.md"], True),
        (["doc/a.md", "src/main.c"], False),
        (["doc/sub/a.md"], False),
        ([], False),
    ],
)
def test_changes_include_only_needs_changed_files_that_all_match(
    files: list[str], expected: bool
) -> None:
    assert evaluate("changesIncludeOnly('doc/*')", {}, files) is expected


def test_changes_include_only_accepts_files_matched_by_different_patterns() -> None:
    files = [".github/workflows/ci.yml", ".circleci/config.yml"]

    condition = "changesIncludeOnly('.github/workflows/*', '.circleci/config.yml')"

    assert evaluate(condition, {}, files) is True
    assert evaluate(condition, {}, [*files, "setup.py"]) is False


def test_with_an_unknown_list_of_changes_both_functions_are_false() -> None:
    # As cirrus-cli without --affected-files: no file is known to have changed.
    assert evaluate("changesInclude('**')", {}, None) is False
    assert evaluate("changesIncludeOnly('**')", {}, None) is False
    assert evaluate("!changesInclude('.cirrus.yml', '**.{js,ts}')", {}) is True


def test_patterns_are_expanded_with_the_environment() -> None:
    environment = {"COMPONENT": "src/app", "PATTERN": "docs/**"}

    assert evaluate("changesInclude('$COMPONENT/*.go')", environment, CHANGED) is True
    assert evaluate("changesInclude($PATTERN)", environment, CHANGED) is True
    assert evaluate("changesInclude('${NOPE}/*.go')", environment, CHANGED) is False


def test_a_function_call_may_span_lines_and_combine_with_other_conditions() -> None:
    condition = (
        "(\n  $CIRRUS_BRANCH == $CIRRUS_DEFAULT_BRANCH ||\n  $CIRRUS_BRANCH !=~ 'pull/.*'\n) &&\n"
        "changesInclude(\n  'src/**',\n  'tests/**'\n)\n"
    )

    assert evaluate(condition, PUSH, ["src/a.c"]) is True
    assert evaluate(condition, PUSH, ["docs/a.md"]) is False


def test_a_function_result_compares_as_a_string() -> None:
    assert evaluate("changesInclude('docs/*') == 'true'", {}, CHANGED) is True


def test_a_function_needs_at_least_one_pattern() -> None:
    assert "changesInclude() needs at least one pattern" in str(failure("changesInclude()"))


def test_a_bad_pattern_is_an_error_naming_the_pattern() -> None:
    error = failure("changesInclude('src/[a-z')")

    assert "bad pattern 'src/[a-z': missing ]" in str(error)
    assert error.at == Position(7, 14)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.txt", "file.txt", True),
        ("*.{html,htm}", "old.htm", True),
        ("?.txt", "22.txt", False),
        ("/etc/*", "/etc/ssh/sshd_config", False),
        ("/home/**", "/home/user/www", True),
        ("[!a].txt", "b.txt", True),
        ("[!a].txt", "a.txt", False),
        ("[!a]", "/", False),
        ("foo[-a-z]bar", "foo-bar", True),
        ("[^a].txt", "^.txt", True),
        ("[^a].txt", "b.txt", False),
        ("foo[a-]", "foo-", True),
        ("\\{foo*", "{foo}.html", True),
        ("*\\].html", "[foo].html", True),
        ("a.b", "axb", False),
        ("a+(b)|c", "a+(b)|c", True),
        ("x}y,z", "x}y,z", True),
        ("[&&]", "&", True),
    ],
)
def test_glob_patterns_read_as_java_nio_globs(pattern: str, path: str, expected: bool) -> None:
    assert (glob_to_regex(pattern).fullmatch(path) is not None) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("*[a--z]", "invalid range"),
        ("*[z-a]", "invalid range"),
        ("*[a-z", "missing ]"),
        ("*{class,java", "missing }"),
        ("*.{class,{.java}}", "cannot nest"),
        ("*.html\\", "nothing to escape"),
        ("[a/b]", "/ inside [ ]"),
    ],
)
def test_malformed_glob_patterns_are_refused(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError, match=re.escape(problem)):
        glob_to_regex(pattern)


def test_a_file_matched_by_several_patterns_counts_once() -> None:
    assert count_matching(["a.go", "b.md"], ["*.go", "a.*", "**"]) == 2


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("", "the condition is empty"),
        ("   \n", "the condition is empty"),
        ("$A == 'x", "the string starting with ' is not closed at character 7"),
        ('$A == "x\n"', 'the string starting with " is not closed at character 7'),
        ("($A == 'x'", "unexpected end of the condition (a ( is not closed) at character 11"),
        ("$A == 'x')", 'unexpected ")" at character 10'),
        ("$A ==", "unexpected end of the condition at character 6"),
        ("&& true", 'unexpected "&&" at character 1'),
        ("true false", 'unexpected "false" at character 6'),
        ("true 'x'", "unexpected the string 'x' at character 6"),
        ("$A = 'x'", 'unexpected "=" at character 4'),
        ("$A & $B", 'unexpected "&" at character 4'),
        ("1 == 1", 'unexpected "1" at character 1'),
        ("`raw`", 'unexpected "`" at character 1'),
        ("$ == 'x'", "a variable name must follow $ at character 1"),
        ("${A == 'x'", "${ is not closed with } at character 1"),
        ("master", "unknown name master (a variable is $master) at character 1"),
        ("True", "unknown name True"),
        ("contains('a')", "unknown function contains() at character 1"),
        ("changesInclude 'a'", "unexpected the string 'a' (expected ( after changesInclude)"),
        ("changesInclude('a' 'b')", "unexpected the string 'b' (expected , or )) at character 20"),
        ("true /* open", "a comment is not closed with */ at character 6"),
        ("$CIRRUS_BRANCH", 'the result needs true or false, not "main"'),
        ("$CIRRUS_BRANCH && true", '&& needs true or false, not "main"'),
        ("!$CIRRUS_BRANCH", '! needs true or false, not "main"'),
        ("'yes'", 'the result needs true or false, not "yes"'),
    ],
)
def test_a_bad_condition_is_refused_with_what_and_where(expression: str, problem: str) -> None:
    error = failure(expression, {"CIRRUS_BRANCH": "main", "A": "x"})

    assert problem in error.detail
    assert error.at == Position(7, 14)
    assert str(error).endswith("(line 7, column 14)")


def test_the_error_quotes_the_condition() -> None:
    error = failure("  $A ==  \n")

    assert error.detail.startswith('invalid condition "$A ==": ')


def test_the_tokens_carry_their_kind_text_and_offset() -> None:
    tokens = tokenize("!${A} =~ 'x' || changesInclude(\"y\")")

    assert [(token.kind, token.text, token.offset) for token in tokens] == [
        (TokenKind.SYMBOL, "!", 0),
        (TokenKind.VARIABLE, "A", 1),
        (TokenKind.SYMBOL, "=~", 6),
        (TokenKind.LITERAL, "x", 9),
        (TokenKind.SYMBOL, "||", 13),
        (TokenKind.NAME, "changesInclude", 16),
        (TokenKind.SYMBOL, "(", 30),
        (TokenKind.LITERAL, "y", 31),
        (TokenKind.SYMBOL, ")", 34),
        (TokenKind.END, "", 35),
    ]


def test_the_negated_match_operator_is_one_token() -> None:
    assert [token.text for token in tokenize("$A !=~ 'x'")][:2] == ["A", "!=~"]
