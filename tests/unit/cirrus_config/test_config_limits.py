"""Limits of a configuration: bytes, nesting depth and nodes after alias expansion, and the
characters YAML cannot hold; each refusal is one ``CirrusConfigError`` naming the limit."""

from __future__ import annotations

import pytest

from adapters.cirrus_config.parse_build import parse_build
from adapters.cirrus_config.yaml_source import load_yaml
from domain.cirrus_config.limits import (
    DEFAULT_MAX_NODES,
    MAX_BYTES_KEY,
    MAX_DEPTH_KEY,
    MAX_NODES_KEY,
    ConfigLimitError,
    ConfigLimits,
)
from domain.cirrus_config.nodes import CirrusConfigError, Position

SMALL_TASK = "task:\n  script: echo hi\n"


def alias_bomb(levels: int) -> str:
    """A few hundred bytes whose aliases expand to ten to the power ``levels`` scalars."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def refusal(text: str, limits: ConfigLimits | None = None) -> ConfigLimitError:
    with pytest.raises(ConfigLimitError) as caught:
        load_yaml(text, limits=limits or ConfigLimits())
    return caught.value


def test_an_alias_bomb_of_400_bytes_is_refused_naming_the_limit() -> None:
    text = alias_bomb(9)  # 10**9 scalars once expanded: without the limit, this never ends
    assert len(text) < 600
    error = refusal(text)
    assert error.setting == MAX_NODES_KEY
    assert f"more than {DEFAULT_MAX_NODES} nodes" in str(error)
    assert MAX_NODES_KEY in str(error)


def test_the_node_limit_is_the_one_given() -> None:
    text = alias_bomb(3)  # 11 + 111 + 1,111 nodes under the keys, and the mapping
    assert load_yaml(text, limits=ConfigLimits(max_nodes=1_234)) is not None
    assert refusal(text, ConfigLimits(max_nodes=1_233)).setting == MAX_NODES_KEY


@pytest.mark.parametrize("depth", [3_000, 50_000])
def test_flow_sequences_nested_thousands_deep_are_refused_at_the_first_level_too_many(
    depth: int,
) -> None:
    error = refusal("key: " + "[" * depth + "]" * depth)
    assert error.setting == MAX_DEPTH_KEY
    assert "nested more than 64 levels deep" in str(error)
    # The mapping is level 1 and the first "[" (column 6) level 2: the 64th "[" is level 65.
    assert error.at == Position(1, 5 + 64)


def test_block_mappings_nested_deeper_than_the_limit_are_refused_where_it_is_passed() -> None:
    lines = [" " * level + f"k{level}:" for level in range(10)]
    text = "\n".join(lines) + " leaf\n"
    assert load_yaml(text, limits=ConfigLimits(max_depth=10)) is not None
    error = refusal(text, ConfigLimits(max_depth=5))
    assert error.setting == MAX_DEPTH_KEY
    assert error.at.line == 6  # the mapping of k5, the sixth level


def test_aliases_count_toward_the_depth_of_the_tree_they_expand_into() -> None:
    nested = "[" * 30 + "x" + "]" * 30
    text = f"base: &base {nested}\nuse: {'[' * 40}*base{']' * 40}\n"
    assert load_yaml(text, limits=ConfigLimits(max_depth=80)) is not None
    assert refusal(text, ConfigLimits(max_depth=60)).setting == MAX_DEPTH_KEY


@pytest.mark.parametrize(
    ("text", "character", "where"),
    [
        ("a: b\x00c\n", "U+0000", Position(1, 5)),
        ("a: 1\nb: x\x07\n", "U+0007", Position(2, 5)),
        ("a: 1\nb: \ud800\n", "U+D800", Position(2, 4)),
    ],
)
def test_nul_control_characters_and_lone_surrogates_are_a_config_error_with_line_and_column(
    text: str, character: str, where: Position
) -> None:
    with pytest.raises(CirrusConfigError) as caught:
        load_yaml(text)
    assert f"character {character} is not allowed" in str(caught.value)
    assert caught.value.at == where


def test_a_config_or_starlark_text_over_the_byte_limit_is_refused_as_too_large() -> None:
    limits = ConfigLimits(max_bytes=100)
    padded = SMALL_TASK + "#" * 100 + "\n"
    with pytest.raises(ConfigLimitError) as caught:
        parse_build(padded, limits=limits)
    assert caught.value.too_large
    assert caught.value.setting == MAX_BYTES_KEY
    assert f"config is {len(padded)} bytes, more than the limit of 100" in str(caught.value)
    with pytest.raises(ConfigLimitError) as star:
        parse_build(SMALL_TASK, starlark="# " + "é" * 60, limits=limits)
    assert "starlark is 122 bytes" in str(star.value)


def test_the_default_limits_take_a_megabyte_of_ordinary_configuration() -> None:
    script = "".join(f"    - echo step {n} {'x' * 60}\n" for n in range(6))
    tasks = "".join(f"t{n}_task:\n  script:\n{script}" for n in range(2_000))
    assert 900_000 < len(tasks) < 1024 * 1024
    assert len(parse_build(tasks).tasks) == 2_000


def test_yaml_text_returned_by_a_starlark_script_obeys_the_same_limits() -> None:
    star = f"def main(ctx):\n    return {alias_bomb(6)!r}\n"
    with pytest.raises(CirrusConfigError) as caught:
        parse_build(SMALL_TASK, starlark=star, limits=ConfigLimits(max_nodes=5_000))
    assert MAX_NODES_KEY in str(caught.value)


@pytest.mark.parametrize(
    "limits",
    [{"max_bytes": 0}, {"max_depth": 0}, {"max_nodes": -1}, {"max_depth": 201}],
)
def test_limits_that_would_refuse_everything_or_overflow_the_stack_are_a_value_error(
    limits: dict[str, int],
) -> None:
    with pytest.raises(ValueError, match="config"):
        ConfigLimits(**limits)


def test_an_alias_bomb_given_to_starlarks_yaml_loads_is_refused_not_copied_without_end() -> None:
    star = (
        'load("cirrus", "yaml")\n\ndef main(ctx):\n'
        f"    yaml.loads({alias_bomb(9)!r})\n    return []\n"
    )
    # 10**9 values once expanded: without the cap, the copy would never end.
    with pytest.raises(CirrusConfigError) as caught:
        parse_build(SMALL_TASK, starlark=star)
    assert "yaml.loads: more than 100000 values once aliases are expanded" in str(caught.value)
