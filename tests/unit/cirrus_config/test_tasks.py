"""Top-level keys become tasks; settings are collected from the top level and the task."""

from __future__ import annotations

import textwrap

import pytest

from adapters.cirrus_config.yaml_source import load_yaml
from domain.cirrus_config.nodes import CirrusConfigError, Pairs, Position, Scalar
from domain.cirrus_config.tasks import (
    collect,
    environment_map,
    parse_seconds,
    task_nodes,
    trigger_is_manual,
)


def tree(text: str) -> Pairs:
    root = load_yaml(textwrap.dedent(text))
    assert isinstance(root, Pairs)
    return root


def test_task_keys_are_recognised_by_their_ending_and_named_after_their_prefix() -> None:
    root = tree("""
        task: {}
        build_task: {}
        mytask: {}
        docker_builder: {}
        image_docker_builder: {}
        pipe: {}
        deploy_pipe: {}
        defaults: &defaults {a: b}
        task_foo: {}
        env: {A: b}
        """)
    found = [(node.kind, node.fallback_name) for node in task_nodes(root)]
    assert found == [
        ("task", "main"),
        ("task", "build"),
        ("task", "my"),
        ("docker_builder", "main"),
        ("docker_builder", "image"),
        ("pipe", "main"),
        ("pipe", "deploy"),
    ]


def test_repeated_task_keys_are_separate_tasks_with_their_positions() -> None:
    nodes = task_nodes(tree("task:\n  a: 1\ntask:\n  b: 2\n"))
    assert [node.at.line for node in nodes] == [1, 3]
    assert [node.body.key_list() for node in nodes] == [["a"], ["b"]]


def test_an_empty_task_is_a_task_without_fields() -> None:
    (node,) = task_nodes(tree("task:\n"))
    assert node.body.items == ()


def test_collected_maps_merge_key_by_key_with_the_task_winning() -> None:
    root = tree("""
        container: {image: a, cpu: 4}
        task:
          container: {image: b}
        """)
    body = task_nodes(root)[0].body
    merged = collect("container", body, root)
    assert isinstance(merged, Pairs)
    assert {k: v.text for k, v in merged.items if isinstance(v, Scalar)} == {
        "image": "b",
        "cpu": "4",
    }


def test_collected_scalars_are_replaced_by_the_task() -> None:
    root = tree("only_if: $A == 'x'\ntask:\n  only_if: $B == 'y'\n")
    value = collect("only_if", task_nodes(root)[0].body, root)
    assert isinstance(value, Scalar)
    assert value.text == "$B == 'y'"
    assert collect("skip", task_nodes(root)[0].body, root) is None


def test_environment_lists_of_maps_merge_and_list_values_join_with_newlines() -> None:
    root = tree("""
        env:
          - A: one
          - B: [x, y]
        task:
          env: {A: two}
        """)
    merged = collect("env", task_nodes(root)[0].body, root)
    assert merged is not None
    assert environment_map(merged, "main") == {"A": "two", "B": "x\ny"}


def test_a_nested_map_in_the_environment_is_refused_with_its_position() -> None:
    root = tree("env:\n  A:\n    b: c\n")
    with pytest.raises(CirrusConfigError, match=r"expected a scalar value.*line 3"):
        environment_map(root.items[0][1], "main")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 5400), ("90m", 5400), ("2h", 7200), ("30s", 30), ("1H", 3600)]
)
def test_timeout_in_is_minutes_or_a_duration(text: str, seconds: int) -> None:
    assert parse_seconds(text, Position(), "t") == seconds


@pytest.mark.parametrize("text", ["1.5h", "0", "soon", "10d"])
def test_timeouts_the_original_cannot_read_are_refused(text: str) -> None:
    with pytest.raises(CirrusConfigError, match="timeout_in"):
        parse_seconds(text, Position(3, 4), "t")


def test_trigger_type_is_manual_or_automatic() -> None:
    assert trigger_is_manual("MANUAL", Position(), "t") is True
    assert trigger_is_manual("automatic", Position(), "t") is False
    with pytest.raises(CirrusConfigError, match="trigger_type"):
        trigger_is_manual("sometimes", Position(), "t")
