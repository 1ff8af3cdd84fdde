"""``$VAR`` expansion: the parser's rule (``expand``) and the agent's rule
(``expand_environment``), with cases reasoned from how cirrus-cli reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cirrus_config.expand import expand, expand_environment

NAMES = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True)
VALUES = st.text(alphabet=st.characters(blacklist_characters="$%"), max_size=20)


# --- expand: the configuration parser's rule ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$BRANCH", "main"),
        ("${BRANCH}", "main"),
        ("%BRANCH%", "main"),
        ("build-$BRANCH-x", "build-main-x"),
        ("${BRANCH}x", "mainx"),
        ("$BRANCH$BRANCH", "mainmain"),
        ("$V_2", "two"),
        ("${V_2}/${BRANCH}", "two/main"),
    ],
)
def test_known_variables_are_replaced_in_every_written_form(text: str, expected: str) -> None:
    assert expand(text, {"BRANCH": "main", "V_2": "two"}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "$NOPE",
        "${NOPE}",
        "%NOPE%",
        "a $NOPE b",
        "$",
        "$$",
        "${",
        "${}",
        "100%",
        "$ x",
        "${NOPE:-d}",
    ],
)
def test_anything_but_a_known_name_stays_as_written(text: str) -> None:
    assert expand(text, {"BRANCH": "main"}) == text


def test_a_default_value_form_is_not_supported_and_stays_literal_even_for_a_known_name() -> None:
    assert expand("${BRANCH:-dev}", {"BRANCH": "main"}) == "${BRANCH:-dev}"


def test_a_longer_known_name_wins_over_its_known_prefix() -> None:
    environment = {"CIRRUS": "true", "CIRRUS_BRANCH": "main", "CIRRUS_B": "wrong"}

    assert expand("$CIRRUS_BRANCH $CIRRUS", environment) == "main true"
    assert expand("$CIRRUS $CIRRUS_BRANCH", environment) == "true main"


def test_replacement_is_textual_so_a_known_prefix_of_an_unknown_name_is_replaced() -> None:
    # Cirrus replaced "$CIRRUS" wherever it appeared, not by whole token.
    assert expand("$CIRRUS_UNKNOWN", {"CIRRUS": "true"}) == "true_UNKNOWN"


def test_a_value_referring_to_another_variable_is_expanded_in_turn() -> None:
    environment = {
        "IMAGE": "${DISTRO}-${SUFFIX}",
        "DISTRO": "$NAME-$VERSION",
        "NAME": "ubuntu",
        "VERSION": "22",
        "SUFFIX": "base",
    }

    assert expand("gcr.io/$IMAGE", environment) == "gcr.io/ubuntu-22-base"


def test_a_self_reference_stops_after_a_bounded_number_of_rounds() -> None:
    assert expand("$A", {"A": "x$A"}) == "x" * 10 + "$A"


def test_two_variables_referring_to_each_other_do_not_loop_forever() -> None:
    assert expand("$A", {"A": "$B", "B": "$A"}) == "$B"


def test_a_dollar_before_a_known_name_only_loses_the_name() -> None:
    assert expand("$$HOME", {"HOME": "/root"}) == "$/root"


@given(text=VALUES, environment=st.dictionaries(NAMES, st.text(max_size=10), max_size=5))
def test_text_without_dollar_or_percent_is_unchanged(
    text: str, environment: dict[str, str]
) -> None:
    assert expand(text, environment) == text


@given(text=st.text(max_size=30))
def test_an_empty_environment_changes_nothing(text: str) -> None:
    assert expand(text, {}) == text


@given(name=NAMES, value=VALUES)
def test_a_lone_reference_reads_the_value(name: str, value: str) -> None:
    assert expand(f"${name}", {name: value}) == value
    assert expand(f"${{{name}}}", {name: value}) == value


# --- expand_environment: the agent's rule -------------------------------------------------


def test_a_value_may_refer_to_another_variable_of_the_same_environment() -> None:
    environment = {"GOPATH": "/go", "BIN": "$GOPATH/bin", "TOOL": "${BIN}/tool"}

    assert expand_environment(environment) == {
        "GOPATH": "/go",
        "BIN": "/go/bin",
        "TOOL": "/go/bin/tool",
    }


def test_the_order_of_the_variables_does_not_matter() -> None:
    environment = {"TOOL": "${BIN}/tool", "BIN": "$GOPATH/bin", "GOPATH": "/go"}

    assert expand_environment(environment)["TOOL"] == "/go/bin/tool"


def test_path_extended_with_itself_reads_the_base_value() -> None:
    base = {"HOME": "/root", "PATH": "/usr/bin:/bin"}

    result = expand_environment({"PATH": "$HOME/bin:$PATH"}, base)

    assert result == {"PATH": "/root/bin:/usr/bin:/bin"}


def test_a_self_reference_with_nothing_in_the_base_keeps_its_value_for_the_shell() -> None:
    result = expand_environment({"PATH": "/opt/bin:$PATH"})

    assert result == {"PATH": "/opt/bin:$PATH"}


def test_two_variables_referring_to_each_other_keep_their_values() -> None:
    assert expand_environment({"A": "$B", "B": "$A"}) == {"A": "$B", "B": "$A"}


def test_a_reference_reads_the_base_before_the_environment() -> None:
    # The agent looks its own process environment up first.
    result = expand_environment({"HOME": "/custom", "CACHE": "$HOME/.cache"}, {"HOME": "/root"})

    assert result == {"HOME": "/custom", "CACHE": "/root/.cache"}


def test_the_result_holds_only_the_keys_of_the_environment() -> None:
    result = expand_environment({"A": "$B"}, {"B": "b", "C": "c"})

    assert result == {"A": "b"}


def test_an_unknown_reference_becomes_empty_as_in_a_shell() -> None:
    assert expand_environment({"A": "x${NOPE}y$NOPE"}) == {"A": "xy"}


def test_an_unknown_reference_stays_as_written_when_asked_to() -> None:
    result = expand_environment({"A": "$HOME/x", "B": "${A}/y"}, keep_unknown=True)

    assert result == {"A": "$HOME/x", "B": "$HOME/x/y"}


def test_the_text_after_a_colon_in_braces_is_the_default_of_an_unknown_name() -> None:
    result = expand_environment({"A": "${NOPE:fallback}", "B": "${NOPE:-dash}", "C": "${A:x}"})

    assert result == {"A": "fallback", "B": "-dash", "C": "fallback"}


def test_windows_percent_references_are_expanded() -> None:
    assert expand_environment({"P": "%DIR%\\bin"}, {"DIR": "C:\\tools"}) == {"P": "C:\\tools\\bin"}


def test_a_percent_reference_is_an_ascii_name_only_as_gos_word_class_reads_it() -> None:
    assert expand_environment({"P": "%CAFÉ%", "Q": "%CAFE%"}) == {"P": "%CAFÉ%", "Q": ""}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cost: $", "cost: $"),
        ("a $ b", "a $ b"),
        ("$$", ""),
        ("pid $$ here", "pid  here"),
        ("$1 and $?", " and "),
        ("x${", "x"),
        ("x${}y", "xy"),
        ("x${unclosed", "xunclosed"),
        ("$-x", "x"),
    ],
)
def test_dollar_signs_that_are_not_names_follow_the_shell_like_rules(
    value: str, expected: str
) -> None:
    assert expand_environment({"V": value}) == {"V": expected}


def test_names_stop_at_the_first_character_that_is_not_a_letter_digit_or_underscore() -> None:
    result = expand_environment({"A": "$NAME_2.txt $NAME-x"}, {"NAME_2": "n2", "NAME": "n"})

    assert result == {"A": "n2.txt n-x"}


def test_a_cycle_through_another_variable_keeps_both_values() -> None:
    assert expand_environment({"A": "a$B", "B": "b$A"}) == {"A": "a$B", "B": "b$A"}


@given(environment=st.dictionaries(NAMES, VALUES, max_size=6), base=st.dictionaries(NAMES, VALUES))
def test_values_without_references_are_unchanged(
    environment: dict[str, str], base: dict[str, str]
) -> None:
    assert expand_environment(environment, base) == environment


@given(environment=st.dictionaries(NAMES, st.text(max_size=12), max_size=6))
def test_expansion_always_ends_and_keeps_every_key(environment: dict[str, str]) -> None:
    once = expand_environment(environment, keep_unknown=True)

    assert set(once) == set(environment)
