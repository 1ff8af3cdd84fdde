"""``load_yaml``: ``.cirrus.yml`` text to the configuration tree, as Cirrus's Go reader read it."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from adapters.cirrus_config.yaml_source import load_yaml
from domain.build import BuildConfigError
from domain.cirrus_config.matrix import expand_matrices
from domain.cirrus_config.nodes import CirrusConfigError, Node, Pairs, Position, Scalar, Sequence
from tests.unit.cirrus_config.trees import REALWORLD, plain


def load_pairs(text: str) -> Pairs:
    node = load_yaml(text)
    assert isinstance(node, Pairs)
    return node


def scalar(node: Node | None) -> Scalar:
    assert isinstance(node, Scalar)
    return node


def refusal(text: str) -> CirrusConfigError:
    with pytest.raises(CirrusConfigError) as caught:
        load_yaml(text)
    return caught.value


def test_repeated_keys_are_all_kept_in_document_order() -> None:
    tree = load_pairs("task:\n  name: a\ntask:\n  name: b\nlint_task: {}\n")
    assert tree.key_list() == ["task", "task", "lint_task"]
    assert plain(tree.items[1][1]) == [("name", "b")]


def test_scalars_keep_their_text_as_written_next_to_a_yaml_1_2_value() -> None:
    tree = load_pairs(
        "a: 1.10\nb: yes\nc: true\nd: ~\ne: 0777\nf: 0x1F\ng: 1_000\nh: .5\ni: 'true'\nj: on\n"
    )
    values = {key: (scalar(value).text, scalar(value).value) for key, value in tree.items}
    assert values == {
        "a": ("1.10", 1.1),
        "b": ("yes", "yes"),
        "c": ("true", True),
        "d": ("~", None),
        "e": ("0777", 0o777),
        "f": ("0x1F", 31),
        "g": ("1_000", 1000),
        "h": (".5", 0.5),
        "i": ("true", "true"),
        "j": ("on", "on"),
    }


def test_an_empty_value_is_a_null_scalar_with_empty_text() -> None:
    value = scalar(load_pairs("key:\n").get("key"))
    assert (value.text, value.value) == ("", None)


def test_keys_that_are_not_strings_become_their_text() -> None:
    assert load_pairs("1: x\ntrue: y\n1.5: z\n").key_list() == ["1", "true", "1.5"]


def test_positions_are_one_based_lines_and_columns_of_keys_and_values() -> None:
    tree = load_pairs("env:\n  A: one\n  B:   two\n")
    env = tree.get("env")
    assert isinstance(env, Pairs)
    assert tree.at == Position(1, 1)
    assert env.key_positions == (Position(2, 3), Position(3, 3))
    assert scalar(env.get("B")).at == Position(3, 8)


def test_block_and_quoted_scalars_keep_their_content() -> None:
    tree = load_pairs('script: |\n  echo a\n  echo b\nname: "x: y"\n')
    assert scalar(tree.get("script")).text == "echo a\necho b\n"
    assert scalar(tree.get("name")).text == "x: y"


def test_an_empty_or_comment_only_text_has_no_tree() -> None:
    assert load_yaml("") is None
    assert load_yaml("# nothing here\n") is None


def test_only_the_first_document_is_read_as_go_unmarshal_does() -> None:
    assert plain(load_yaml("a: 1\n---\nb: 2\n")) == [("a", "1")]


def test_null_list_items_are_kept_for_the_task_reader_to_judge() -> None:
    assert plain(load_yaml("- a\n-\n- ~\n")) == ["a", "", "~"]


def test_an_alias_is_a_copy_of_its_anchor_placed_where_the_alias_stands() -> None:
    tree = load_pairs("base: &img\n  image: x\ntask:\n  container: *img\n")
    task = tree.get("task")
    assert isinstance(task, Pairs)
    assert plain(task.get("container")) == [("image", "x")]
    container = task.get("container")
    assert container is not None
    assert container.at == Position(4, 14)


def test_an_anchor_defined_again_is_the_one_later_aliases_see() -> None:
    assert plain(load_yaml("a: &x 1\nb: &x 2\nc: *x\n")) == [("a", "1"), ("b", "2"), ("c", "2")]


def test_merged_keys_stand_where_the_merge_key_stood() -> None:
    tree = load_pairs("d: &d {x: 1, y: 2}\nt:\n  a: 0\n  <<: *d\n  z: 3\n")
    assert plain(tree.get("t")) == [("a", "0"), ("x", "1"), ("y", "2"), ("z", "3")]


def test_a_key_written_before_the_merge_wins_over_the_merged_one() -> None:
    tree = load_pairs("d: &d {name: merged, y: 2}\nt:\n  name: mine\n  <<: *d\n")
    assert plain(tree.get("t")) == [("name", "mine"), ("y", "2")]


def test_a_key_written_after_the_merge_is_kept_after_it_and_wins_as_the_last() -> None:
    tree = load_pairs("d: &d {name: merged}\nt:\n  <<: *d\n  name: mine\n")
    task = tree.get("t")
    assert isinstance(task, Pairs)
    assert task.key_list() == ["name", "name"]
    assert scalar(task.get("name")).text == "mine"


def test_a_collected_field_merged_over_an_explicit_one_is_kept_twice() -> None:
    # Cirrus merges both ``env`` blocks (its merge exemptions); plain YAML would drop one.
    tree = load_pairs("d: &d\n  env: {A: 1}\nt:\n  env: {B: 2}\n  <<: *d\n")
    assert plain(tree.get("t")) == [("env", [("B", "2")]), ("env", [("A", "1")])]


def test_the_caller_can_choose_which_merged_keys_are_kept_twice() -> None:
    text = "d: &d\n  env: {A: 1}\nt:\n  env: {B: 2}\n  <<: *d\n"
    tree = load_yaml(text, keep_merged=lambda key: False)
    assert isinstance(tree, Pairs)
    assert plain(tree.get("t")) == [("env", [("B", "2")])]


def test_two_merge_keys_in_one_mapping_both_apply_in_order() -> None:
    tree = load_pairs("a: &a\n  env: {F: 1}\nb: &b\n  env: {S: 2}\nt:\n  <<: *a\n  <<: *b\n")
    assert plain(tree.get("t")) == [("env", [("F", "1")]), ("env", [("S", "2")])]


def test_a_merged_list_of_mappings_gives_the_first_source_precedence() -> None:
    tree = load_pairs(
        "l:\n  - &F {ACTUAL: UNDESIRED, CONTROL: DESIRED}\n  - &S {CONTROL: UNDESIRED}\n"
        "env:\n  <<: [*F, *S]\n  ACTUAL: DESIRED\n"
    )
    env = tree.get("env")
    assert isinstance(env, Pairs)
    assert scalar(env.get("ACTUAL")).text == "DESIRED"
    assert scalar(env.get("CONTROL")).text == "DESIRED"


def test_a_mapping_merging_an_alias_of_a_list_becomes_that_list() -> None:
    tree = load_pairs("rows: &ROWS\n  - {A: 1}\n  - {A: 2}\ntask:\n  matrix:\n    <<: *ROWS\n")
    task = tree.get("task")
    assert isinstance(task, Pairs)
    assert plain(task.get("matrix")) == [[("A", "1")], [("A", "2")]]


def test_a_mapping_merging_a_list_and_holding_other_keys_is_refused() -> None:
    error = refusal("rows: &R\n  - {A: 1}\nm:\n  <<: *R\n  B: 2\n")
    assert "merges a sequence" in error.detail
    assert error.at == Position(4, 3)


def test_merging_a_scalar_alias_is_refused_where_it_stands() -> None:
    error = refusal("s: &s text\nt:\n  <<: *s\n")
    assert error.detail.startswith("invalid YAML: merge key should either be associated")
    assert error.at == Position(3, 7)


def test_a_recursive_alias_is_refused_with_its_name_and_place() -> None:
    error = refusal("x: &a\n  - *a\n")
    assert error.detail == "invalid YAML: recursive alias 'a'"
    assert error.at == Position(2, 5)


def test_a_recursive_merge_is_refused() -> None:
    assert "recursive alias 'm'" in refusal("x: &m\n  <<: *m\n").detail


def test_an_undefined_alias_is_refused() -> None:
    error = refusal("a: *nowhere\n")
    assert "undefined alias" in error.detail
    assert error.at == Position(1, 4)


def test_a_syntax_error_names_the_problem_and_its_place_like_cirrus() -> None:
    error = refusal("a: [1, 2\nb: 3\n")
    assert error.detail.startswith("invalid YAML: ")
    assert error.at.line >= 2
    assert isinstance(error, BuildConfigError)
    assert str(error).startswith("top level: invalid YAML: ")


def test_a_tab_inside_a_plain_scalar_is_part_of_it() -> None:
    tree = load_pairs('script:\n  - git grep -n "\t" -- *.cc\n')
    assert plain(tree.get("script")) == ['git grep -n "\t" -- *.cc']


def test_a_tab_after_a_value_and_before_a_comment_is_white_space() -> None:
    tree = load_pairs("a: b\t\nc: d\t# why\ne: 'q'\t# quoted\n")
    assert plain(tree) == [("a", "b"), ("c", "d"), ("e", "q")]


def test_a_tab_between_a_key_and_its_colon_is_white_space() -> None:
    assert plain(load_yaml("key\t: value\n")) == [("key", "value")]


def test_a_tab_after_the_colon_of_a_key_separates_the_value() -> None:
    assert plain(load_yaml("key:\tvalue\n")) == [("key", "value")]


def test_tabs_inside_a_flow_collection_are_white_space() -> None:
    assert plain(load_yaml("a: {b: 1,\tc: [x,\ty]}\n")) == [("a", [("b", "1"), ("c", ["x", "y"])])]


def test_a_tab_on_a_continuation_line_of_a_plain_scalar_folds_like_a_space() -> None:
    assert plain(load_yaml("a: one\n  \ttwo\n")) == [("a", "one two")]


def test_a_tab_as_indentation_is_refused_as_go_refuses_it() -> None:
    error = refusal("a: 1\n\tb: 2\n")
    assert "'\\t'" in error.detail
    assert error.at == Position(2, 1)


def test_a_tab_in_block_scalar_content_is_kept() -> None:
    assert plain(load_yaml("a: |\n  x\ty\n")) == [("a", "x\ty\n")]


def test_every_realworld_file_loads_and_expands() -> None:
    files = sorted(glob.glob(str(REALWORLD / "*.yml")))
    assert len(files) == 60
    for name in files:
        tree = load_yaml(Path(name).read_text(encoding="utf-8"))
        assert isinstance(tree, Pairs), name
        assert isinstance(expand_matrices(tree), Pairs), name


def test_the_realworld_openvdb_file_keeps_its_tab_in_a_script_line() -> None:
    tree = load_pairs((REALWORLD / "AcademySoftwareFoundation__openvdb.yml").read_text())
    lines = [
        scalar(line).text
        for _, task in tree.items
        if isinstance(task, Pairs)
        for key, script in task.items
        if key.endswith("script") and isinstance(script, Sequence)
        for line in script.items
    ]
    assert "git grep -n \"\t\" -- '*.cc' '*.h'" in lines


def test_the_realworld_hwi_file_turns_merged_row_lists_into_matrices() -> None:
    tree = load_pairs((REALWORLD / "bitcoin-core__HWI.yml").read_text())
    device_task = next(
        task
        for key, task in tree.items
        if isinstance(task, Pairs) and task.get("fetch_dist_script")
    )
    assert device_task.key_list()[:3] == ["matrix", "matrix", "fetch_dist_script"]
    python_rows = device_task.items[0][1]
    assert isinstance(python_rows, Sequence)
    assert plain(python_rows.items[0]) == [
        ("container", [("dockerfile", "ci/py37.Dockerfile")]),
        ("env", [("PYTHON", "3.7")]),
    ]
    device_rows = device_task.items[1][1]
    assert isinstance(device_rows, Sequence)
    first_device = device_rows.items[0]
    assert isinstance(first_device, Pairs)
    assert plain(first_device.get("env")) == [("DEVICE", "--trezor-1")]
