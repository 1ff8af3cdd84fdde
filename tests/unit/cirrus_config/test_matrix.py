"""``expand_matrices``: every ``matrix:`` form multiplies its task as Cirrus's modifier did."""

from __future__ import annotations

import pytest

from adapters.cirrus_config.yaml_source import load_yaml
from domain.cirrus_config.matrix import MAX_EXPANSIONS, expand_matrices
from domain.cirrus_config.nodes import CirrusConfigError, Pairs, Position, Scalar, Sequence
from tests.unit.cirrus_config.trees import REALWORLD, plain


def expanded(text: str) -> object:
    tree = load_yaml(text)
    assert tree is not None
    return plain(expand_matrices(tree))


def refusal(text: str) -> CirrusConfigError:
    tree = load_yaml(text)
    assert tree is not None
    with pytest.raises(CirrusConfigError) as caught:
        expand_matrices(tree)
    return caught.value


def test_a_task_level_list_gives_one_task_per_row_under_the_same_key() -> None:
    text = "task:\n  name: t\n  matrix:\n    - env: {V: 1}\n    - env: {V: 2}\n  script: run\n"
    assert expanded(text) == [
        ("task", [("name", "t"), ("env", [("V", "1")]), ("script", "run")]),
        ("task", [("name", "t"), ("env", [("V", "2")]), ("script", "run")]),
    ]


def test_a_row_with_several_keys_puts_them_all_where_the_matrix_stood() -> None:
    text = "a_task:\n  x: 0\n  matrix:\n    - {name: one, y: 1}\n  z: 2\n"
    assert expanded(text) == [("a_task", [("x", "0"), ("name", "one"), ("y", "1"), ("z", "2")])]


def test_a_mapping_matrix_makes_each_of_its_pairs_a_row() -> None:
    text = "color_task:\n  matrix:\n    green: 80\n    black: 90\n"
    assert expanded(text) == [("color_task", [("green", "80")]), ("color_task", [("black", "90")])]


def test_a_mapping_matrix_with_a_repeated_key_gives_a_row_per_repeat() -> None:
    text = "cpu_task:\n  matrix:\n    arch: x86\n    arch: arm\n"
    assert expanded(text) == [("cpu_task", [("arch", "x86")]), ("cpu_task", [("arch", "arm")])]


def test_an_instance_level_matrix_varies_the_instance_and_keeps_its_other_keys() -> None:
    text = "task:\n  container:\n    cpu: 2\n    matrix:\n      - image: a\n      - image: b\n"
    assert expanded(text) == [
        ("task", [("container", [("cpu", "2"), ("image", "a")])]),
        ("task", [("container", [("cpu", "2"), ("image", "b")])]),
    ]


def test_an_env_level_matrix_varies_the_environment() -> None:
    text = "task:\n  env:\n    A: 1\n    matrix:\n      - B: x\n      - B: y\n"
    assert expanded(text) == [
        ("task", [("env", [("A", "1"), ("B", "x")])]),
        ("task", [("env", [("A", "1"), ("B", "y")])]),
    ]


def test_a_rows_env_is_placed_next_to_the_tasks_env_without_merging() -> None:
    text = "task:\n  env: {A: 1}\n  matrix:\n    - env: {B: 2}\n"
    assert expanded(text) == [("task", [("env", [("A", "1")]), ("env", [("B", "2")])])]


def test_several_matrices_in_a_task_give_the_product_with_the_first_varying_slowest() -> None:
    text = (
        "task:\n  container:\n    matrix:\n      - dockerfile: py2\n      - dockerfile: py3\n"
        "  matrix:\n    - env: {V: a}\n    - env: {V: b}\n"
    )
    assert [(plain_task[1][0][1], plain_task[1][1][1]) for plain_task in _tasks(text)] == [
        ([("dockerfile", "py2")], [("V", "a")]),
        ([("dockerfile", "py2")], [("V", "b")]),
        ([("dockerfile", "py3")], [("V", "a")]),
        ([("dockerfile", "py3")], [("V", "b")]),
    ]


def _tasks(text: str) -> list[tuple[str, list[tuple[str, object]]]]:
    result = expanded(text)
    assert isinstance(result, list)
    return result


def test_two_mapping_matrices_on_one_level_give_every_combination() -> None:
    text = (
        "cpu_task:\n  matrix:\n    arch: x86\n    arch: arm\n"
        "  matrix:\n    cores: 4\n    cores: 8\n"
    )
    assert [task for _, task in _tasks(text)] == [
        [("arch", "x86"), ("cores", "4")],
        [("arch", "x86"), ("cores", "8")],
        [("arch", "arm"), ("cores", "4")],
        [("arch", "arm"), ("cores", "8")],
    ]


def test_a_matrix_inside_a_row_is_expanded_after_the_row_is_in_place() -> None:
    text = (
        "task:\n  matrix:\n    - name: a\n      matrix:\n        - {n: 1}\n        - {n: 2}\n"
        "    - name: b\n"
    )
    assert [task for _, task in _tasks(text)] == [
        [("name", "a"), ("n", "1")],
        [("name", "a"), ("n", "2")],
        [("name", "b")],
    ]


def test_a_matrix_inside_nested_lists_multiplies_the_task_holding_them() -> None:
    text = (
        "nested_task:\n  - - color:\n        matrix:\n"
        "          - black: true\n          - white: true\n"
    )
    assert expanded(text) == [
        ("nested_task", [[[("color", [("black", "true")])]]]),
        ("nested_task", [[[("color", [("white", "true")])]]]),
    ]


def test_expanded_tasks_take_the_place_of_their_task_among_the_others() -> None:
    text = "first_task: {a: 1}\nsecond_task:\n  matrix: [{b: 1}, {b: 2}]\nthird_task: {c: 1}\n"
    assert [key for key, _ in _tasks(text)] == [
        "first_task",
        "second_task",
        "second_task",
        "third_task",
    ]


def test_docker_builders_pipes_and_any_key_ending_in_task_hold_matrices() -> None:
    text = (
        "megatask:\n  matrix: [{c: 1}, {c: 2}]\n"
        "image_docker_builder:\n  matrix: [{t: hot}, {t: cold}]\n"
        "pipe:\n  steps:\n    - image: x\n      matrix: [{s: 1}, {s: 2}]\n"
    )
    assert [key for key, _ in _tasks(text)] == ["megatask"] * 2 + ["image_docker_builder"] * 2 + [
        "pipe"
    ] * 2
    assert _tasks(text)[5][1] == [("steps", [[("image", "x"), ("s", "2")]])]


def test_a_one_row_matrix_just_puts_the_row_in_place() -> None:
    assert expanded("task:\n  matrix:\n    - name: Test\n") == [("task", [("name", "Test")])]


def test_an_empty_matrix_leaves_no_copy_of_its_task() -> None:
    assert expanded("a_task: {x: 1}\nb_task:\n  matrix: []\n") == [("a_task", [("x", "1")])]


def test_a_null_row_is_skipped_as_cirrus_drops_null_list_items() -> None:
    text = "task:\n  matrix:\n    -\n    - {a: 1}\n"
    assert expanded(text) == [("task", [("a", "1")])]


def test_a_matrix_written_as_an_alias_of_rows_is_expanded() -> None:
    text = "axis: &AXIS\n  - {os: a}\n  - {os: b}\ntask:\n  matrix: *AXIS\n"
    assert [task for key, task in _tasks(text) if key == "task"] == [[("os", "a")], [("os", "b")]]


def test_a_matrix_merging_a_list_of_rows_is_expanded() -> None:
    text = "axis: &AXIS\n  - {os: a}\n  - {os: b}\ntask:\n  matrix:\n    <<: *AXIS\n  run: x\n"
    assert [task for key, task in _tasks(text) if key == "task"] == [
        [("os", "a"), ("run", "x")],
        [("os", "b"), ("run", "x")],
    ]


def test_spliced_keys_keep_the_positions_of_the_rows_keys() -> None:
    tree = load_yaml("task:\n  a: 0\n  matrix:\n    - b: 1\n")
    assert tree is not None
    result = expand_matrices(tree)
    assert isinstance(result, Pairs)
    task = result.items[0][1]
    assert isinstance(task, Pairs)
    assert task.key_positions == (Position(2, 3), Position(4, 7))
    assert result.key_positions == (Position(1, 1),)


def test_a_tree_without_positions_expands_without_inventing_any() -> None:
    one = Scalar("1", 1)
    rows = Sequence((Pairs((("v", one),)), Pairs((("w", one),))))
    tree = Pairs((("task", Pairs((("matrix", rows),))),))
    result = expand_matrices(tree)
    assert plain(result) == [("task", [("v", "1")]), ("task", [("w", "1")])]
    assert isinstance(result, Pairs)
    assert result.key_positions == ()


def test_a_tree_without_matrices_is_returned_unchanged() -> None:
    tree = load_yaml("task:\n  env: {A: 1}\n  script: x\n")
    assert tree is not None
    assert expand_matrices(tree) == tree


def test_a_matrix_outside_any_task_is_refused_at_its_key() -> None:
    error = refusal("env:\n  matrix:\n    A: B\ntask:\n  script: x\n")
    assert error.detail == "matrix can be defined only under a task, docker_builder or pipe"
    assert error.at == Position(2, 3)


def test_a_matrix_in_a_key_that_is_no_task_is_refused_even_when_a_task_follows() -> None:
    error = refusal("defaults:\n  matrix: [{a: 1}]\nlint_task:\n  matrix: [{b: 1}]\n")
    assert error.at == Position(2, 3)


def test_a_matrix_holding_a_scalar_is_refused_at_its_key() -> None:
    error = refusal("task:\n  name: t\n  matrix: nothing\n")
    assert error.detail == "matrix should contain a collection"
    assert error.at == Position(3, 3)


def test_a_matrix_holding_null_is_refused() -> None:
    assert refusal("task:\n  matrix:\n").detail == "matrix should contain a collection"


def test_a_matrix_list_holding_a_scalar_row_is_refused_at_that_row() -> None:
    error = refusal("task:\n  matrix:\n    - {a: 1}\n    - just text\n")
    assert error.detail == "matrix with a list can only contain maps as its items"
    assert error.at == Position(4, 7)


def test_a_matrix_product_beyond_the_limit_is_refused() -> None:
    wide = "".join(f"  matrix:\n    - v{n}: a\n    - v{n}: b\n" for n in range(12))
    assert MAX_EXPANSIONS < 2**12 - 1
    assert "matrices expand more than" in refusal("task:\n" + wide).detail


def test_the_realworld_podman_file_expands_its_aliased_platform_axis() -> None:
    tree = load_yaml((REALWORLD / "containers__podman.yml").read_text(encoding="utf-8"))
    assert isinstance(tree, Pairs)
    before = tree.key_list()
    after = expand_matrices(tree)
    assert isinstance(after, Pairs)
    assert "matrix" not in str(plain(after))
    assert len(after.items) > len(before)
    assert [key for key in after.key_list() if key.endswith("_task")][:1] == [
        next(key for key in before if key.endswith("_task"))
    ]


def test_the_realworld_hwi_file_multiplies_python_versions_by_devices_by_kinds() -> None:
    tree = load_yaml((REALWORLD / "bitcoin-core__HWI.yml").read_text(encoding="utf-8"))
    assert isinstance(tree, Pairs)
    after = expand_matrices(tree)
    assert isinstance(after, Pairs)
    names = [
        task.get("name")
        for _, task in after.items
        if isinstance(task, Pairs) and task.get("fetch_dist_script") is not None
    ]
    texts = [name.text for name in names if isinstance(name, Scalar)]
    assert texts[:3] == [
        "Python $PYTHON $DEVICE Wheel",
        "Python $PYTHON $DEVICE Sdist",
        "Python $PYTHON $DEVICE Bindist",
    ]
    assert len(texts) % 3 == 0
