"""``.cirrus.star`` evaluation: what ``main`` returns, the ``cirrus`` module, errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from adapters.cirrus_config.starlark import (
    StarlarkContext,
    evaluate_starlark,
    go_float_text,
)
from domain.cirrus_config.nodes import CirrusConfigError, Node, Pairs, Position, Scalar, Sequence


class DictFiles:
    """A source tree held in memory: ``{path: text}``; directories are the paths' parents."""

    def __init__(self, files: dict[str, str]) -> None:
        self._files = files

    def read(self, path: str) -> bytes | None:
        text = self._files.get(path.strip("/"))
        return None if text is None else text.encode()

    def list(self, directory: str) -> list[str] | None:
        prefix = directory.strip("/") + "/" if directory.strip("/") else ""
        names = {
            path[len(prefix) :].split("/")[0] for path in self._files if path.startswith(prefix)
        }
        return sorted(names) or None


def no_yaml(text: str) -> Node:
    raise AssertionError(f"no YAML expected, got {text!r}")


def run(source: str, **options: object) -> Pairs:
    load_yaml = options.pop("load_yaml", no_yaml)
    assert callable(load_yaml)
    context = StarlarkContext(load_yaml=load_yaml, **options)  # type: ignore[arg-type]
    return evaluate_starlark(source, context)


def plain(node: Node) -> object:
    """The tree as Python values, with repeated keys kept as a list of pairs."""
    if isinstance(node, Pairs):
        return [(key, plain(value)) for key, value in node.items]
    if isinstance(node, Sequence):
        return [plain(item) for item in node.items]
    return node.value


def refusal(source: str, **options: object) -> CirrusConfigError:
    with pytest.raises(CirrusConfigError) as caught:
        run(source, **options)
    return caught.value


# --- what main returns --------------------------------------------------------------------


def test_a_list_of_dicts_becomes_one_task_entry_per_dict_in_order() -> None:
    result = run('def main(ctx):\n    return [{"name": "a", "script": "make"}, {"name": "b"}]\n')
    assert plain(result) == [
        ("task", [("name", "a"), ("script", "make")]),
        ("task", [("name", "b")]),
    ]


def test_a_list_of_tuples_becomes_top_level_pairs_and_keys_may_repeat() -> None:
    result = run(
        "def main(ctx):\n"
        '    return [("env", {"A": "1"}), ("lint_task", {"script": "x"}), '
        '("lint_task", {"script": "y"})]\n'
    )
    assert result.key_list() == ["env", "lint_task", "lint_task"]
    assert plain(result.items[2][1]) == [("script", "y")]


def test_a_list_mixing_dicts_and_tuples_is_refused() -> None:
    error = refusal('def main(ctx):\n    return [{"name": "a"}, ("task", {})]\n')
    assert "both dicts and tuples" in str(error)


def test_a_tuple_that_is_not_a_key_and_a_value_is_refused() -> None:
    error = refusal('def main(ctx):\n    return [("task", {}, 3)]\n')
    assert "(key, value)" in str(error)


def test_an_empty_list_produces_nothing() -> None:
    assert run("def main(ctx):\n    return []\n") == Pairs(())


def test_a_dict_is_a_whole_configuration_with_typed_scalars() -> None:
    result = run(
        "def main(ctx):\n"
        '    return {"container": {"image": "alpine", "cpu": 0.5, "memory": 4.0},\n'
        '            "task": {"only_if": True, "timeout_in": 30, "skip": None,\n'
        '                     "script": ["a", "b"]}}\n'
    )
    container = result.get("container")
    assert isinstance(container, Pairs)
    assert container.get("cpu") == Scalar("0.5", 0.5)
    # The original writes floats as Go's %g, so 4.0 is read back as the integer 4.
    assert container.get("memory") == Scalar("4", 4)
    task = result.get("task")
    assert isinstance(task, Pairs)
    assert task.get("only_if") == Scalar("true", True)
    assert task.get("timeout_in") == Scalar("30", 30)
    assert task.get("skip") == Scalar("null", None)
    assert plain(task.get("script") or Pairs(())) == ["a", "b"]


def test_dict_keys_that_are_not_strings_are_written_as_starlark_prints_them() -> None:
    result = run('def main(ctx):\n    return {"matrix": {1: "one"}}\n')
    assert plain(result) == [("matrix", [("1", "one")])]


def test_a_string_is_yaml_text_read_by_the_yaml_loader() -> None:
    seen: list[str] = []
    parsed = Pairs((("task", Pairs((("script", Scalar("make", "make")),))),))

    def load_yaml(text: str) -> Node:
        seen.append(text)
        return parsed

    result = run('def main(ctx):\n    return "task:\\n  script: make\\n"\n', load_yaml=load_yaml)
    assert result == parsed
    assert seen == ["task:\n  script: make\n"]


def test_an_empty_string_produces_nothing() -> None:
    assert run('def main(ctx):\n    return ""\n') == Pairs(())


def test_an_error_in_the_returned_yaml_names_its_place_in_that_text() -> None:
    def load_yaml(text: str) -> Node:
        raise CirrusConfigError("bad indentation", Position(2, 3))

    error = refusal('def main(ctx):\n    return "a:\\n  - b\\n c"\n', load_yaml=load_yaml)
    assert "YAML text returned by main()" in str(error)
    assert "bad indentation (line 2, column 3)" in str(error)


def test_yaml_text_that_is_not_a_mapping_is_refused() -> None:
    error = refusal('def main(ctx):\n    return "- a"\n', load_yaml=lambda _: Sequence(()))
    assert "not a mapping" in str(error)


def test_main_without_parameters_is_called_without_a_context() -> None:
    assert plain(run('def main():\n    return [{"name": "x"}]\n')) == [("task", [("name", "x")])]


def test_a_file_without_main_produces_nothing_as_in_the_original() -> None:
    assert run("X = 1\n") == Pairs(())


def test_main_that_is_not_a_function_is_refused() -> None:
    assert "main is not a function" in str(refusal("main = 3\n"))


def test_a_result_that_is_not_a_list_a_dict_or_a_string_is_refused() -> None:
    error = refusal("def main(ctx):\n    return 42\n")
    assert "value of type int" in str(error)


# --- the cirrus module --------------------------------------------------------------------


def first_task(result: Pairs) -> dict[str, object]:
    task = result.get("task")
    assert isinstance(task, Pairs)
    return {key: plain(value) for key, value in task.items}


def values(expressions: str, loads: str = "", **options: object) -> dict[str, object]:
    """Evaluate ``key: expression`` lines in a main() after ``load("cirrus", loads)``."""
    body = ", ".join(
        f'"{key.strip()}": {expr.strip()}'
        for key, expr in (line.split(":", 1) for line in expressions.strip().splitlines())
    )
    header = f'load("cirrus", {loads})\n' if loads else ""
    return first_task(run(f"{header}def main(ctx):\n    return [{{{body}}}]\n", **options))


def test_env_is_the_build_environment() -> None:
    got = values(
        'branch: env["CIRRUS_BRANCH"]\nmissing: env.get("NOPE", "-")',
        '"env"',
        environment={"CIRRUS_BRANCH": "main"},
    )
    assert got == {"branch": "main", "missing": "-"}


def test_fs_reads_the_build_source() -> None:
    files = DictFiles({"README.md": "hello", "ci/a.sh": "echo a", "ci/b.sh": "echo b"})
    got = values(
        'read: fs.read("README.md")\n'
        'missing: fs.read("nope.txt")\n'
        'exists: [fs.exists("README.md"), fs.exists("ci"), fs.exists("nope")]\n'
        'isdir: [fs.isdir("ci"), fs.isdir("README.md")]\n'
        'listing: fs.readdir("ci")\n'
        'no_dir: fs.readdir("nope")',
        '"fs"',
        files=files,
    )
    assert got == {
        "read": "hello",
        "missing": None,
        "exists": [True, True, False],
        "isdir": [True, False],
        "listing": ["a.sh", "b.sh"],
        "no_dir": None,
    }


def test_without_source_files_fs_finds_nothing() -> None:
    assert values('read: fs.read("README.md")', '"fs"') == {"read": None}


def test_yaml_loads_and_dumps() -> None:
    got = values(
        'loaded: yaml.loads("a: [1, two]")\ndumped: yaml.dumps({"b": 1, "a": [2]})', '"yaml"'
    )
    assert got == {"loaded": [("a", [1, "two"])], "dumped": "a:\n- 2\nb: 1\n"}


def test_json_loads_and_dumps() -> None:
    got = values('loaded: json.loads("{\\"a\\": [1]}")\ndumped: json.dumps({"a": 1})', '"json"')
    assert got == {"loaded": [("a", [1])], "dumped": '{"a":1}'}


def test_re_functions_behave_as_the_original_go_ones() -> None:
    got = values(
        'match: re.match("v(\\\\d+)", "v1 v22")\n'
        'nomatch: re.match("x", "abc")\n'
        'search: re.search("b+", "abbc")\n'
        'findall: re.findall("a.", "abacad")\n'
        'split: re.split(",", "a,b,c", 2)\n'
        'sub: re.sub("(\\\\w+)@(\\\\w+)", "$2 at ${1}", "me@home")\n'
        'compiled: re.compile("x+").findall("xxaxx")',
        '"re"',
    )
    assert got == {
        "match": [["v1", "1"], ["v22", "22"]],
        "nomatch": [],
        "search": [1, 3],
        "findall": ["ab", "ac", "ad"],
        "split": ["a", "b,c"],
        "sub": "home at me",
        "compiled": ["xx", "xx"],
    }


def test_a_bad_regular_expression_is_refused_with_its_pattern() -> None:
    error = refusal('load("cirrus", "re")\ndef main(ctx):\n    return re.findall("(", "x")\n')
    assert "bad pattern '('" in str(error)
    # An error inside a cirrus function stands at the start of the calling line.
    assert error.at == Position(3, 5)


@pytest.mark.parametrize(
    ("name", "digest"),
    [("md5", hashlib.md5), ("sha1", hashlib.sha1), ("sha256", hashlib.sha256)],
)
def test_hash_functions_give_hex_digests(name: str, digest: Callable[[bytes], object]) -> None:
    got = values(f'digest: hash.{name}("cirrus")', '"hash"')
    assert got == {"digest": digest(b"cirrus").hexdigest()}  # type: ignore[attr-defined]


def test_base64_encodes_and_decodes_in_each_encoding() -> None:
    got = values(
        'std: base64.encode("hi?>")\nraw: base64.encode("hi", "standard_raw")\n'
        'url: base64.encode("hi?>", "url")\nback: base64.decode("aGk")',
        '"base64"',
    )
    assert got == {"std": "aGk/Pg==", "raw": "aGk", "url": "aGk_Pg==", "back": "hi"}


def test_http_is_refused_when_the_controller_does_not_allow_it() -> None:
    error = refusal(
        'load("cirrus", "http")\ndef main(ctx):\n    r = http.get("http://127.0.0.1:9/")\n'
        "    return []\n"
    )
    assert "http.get is not allowed" in str(error)
    assert error.at == Position(3, 5)


def test_changes_include_matches_the_changed_files_with_cirrus_globs() -> None:
    got = values(
        'docs: changes_include("docs/**")\n'
        'go: changes_include("**.go", "*.mod")\n'
        'only_docs: changes_include_only("docs/**")\n'
        'only_all: changes_include_only("docs/**", "**.go")',
        '"changes_include", "changes_include_only"',
        changed_files=("docs/a/b.md", "cmd/main.go"),
    )
    assert got == {"docs": True, "go": True, "only_docs": False, "only_all": True}


def test_changes_include_is_false_when_the_changed_files_are_unknown() -> None:
    got = values('any: changes_include("**")', '"changes_include"')
    assert got == {"any": False}


def test_changes_include_without_a_pattern_is_refused() -> None:
    source = 'load("cirrus", "changes_include")\ndef main():\n    return changes_include()\n'
    assert "one or more string patterns" in str(refusal(source))


def test_is_test_is_false() -> None:
    assert values("flag: is_test", '"is_test"') == {"flag": False}


def test_print_goes_to_the_given_sink_as_starlark_prints() -> None:
    lines: list[str] = []
    run('def main():\n    print("x", [1], None)\n    return []\n', on_print=lines.append)
    assert lines == ["x [1] None"]


def test_load_reads_another_star_file_from_the_source() -> None:
    files = DictFiles({"ci/lib.star": 'def task(name):\n    return {"name": name}\n'})
    result = run('load("ci/lib.star", "task")\ndef main():\n    return [task("a")]\n', files=files)
    assert plain(result) == [("task", [("name", "a")])]


def test_loading_a_module_from_git_is_refused_naming_it() -> None:
    error = refusal('load("github.com/cirrus-modules/helpers", "task")\n')
    assert "github.com/cirrus-modules/helpers" in str(error)
    assert "not supported" in str(error)
    assert error.at == Position(1, 1)


def test_loading_a_missing_module_names_it() -> None:
    error = refusal('\nload("ci/nope.star", "x")\n', files=DictFiles({}))
    assert "module 'ci/nope.star' not found" in str(error)
    assert error.at == Position(2, 1)


def test_a_syntax_error_in_a_loaded_module_names_that_file_and_place() -> None:
    files = DictFiles({"lib.star": "def broken(:\n"})
    error = refusal('load("lib.star", "broken")\n', files=files)
    assert "Parse error" in str(error)
    assert "(in lib.star, line 1, column 12)" in str(error)


# --- errors -------------------------------------------------------------------------------


def test_a_syntax_error_names_its_line_and_column() -> None:
    error = refusal("def main(ctx):\n    return [\n\ndef other(:\n")
    assert str(error).startswith("top level: .cirrus.star: Parse error")
    assert error.at.line == 4


def test_a_runtime_error_names_its_line_and_column() -> None:
    error = refusal("def main(ctx):\n    x = 1\n    return x // 0\n")
    assert "division by zero" in str(error)
    assert error.at == Position(3, 12)


def test_fail_message_is_the_error() -> None:
    error = refusal('def main(ctx):\n    fail("no tasks for " + "you")\n')
    assert "no tasks for you" in str(error)
    assert error.at == Position(2, 5)


def test_an_evaluation_that_runs_too_long_is_stopped() -> None:
    source = "def main():\n    for i in range(1000000000):\n        pass\n    return []\n"
    error = refusal(source, timeout_seconds=0.05)
    assert "timed out" in str(error)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.5, "0.5"),
        (4.0, "4"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (float("inf"), ".inf"),
    ],
)
def test_floats_are_written_as_go_writes_them(number: float, text: str) -> None:
    assert go_float_text(number) == text
