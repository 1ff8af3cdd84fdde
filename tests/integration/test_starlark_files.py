"""``LocalSourceFiles``: ``fs`` and ``load()`` of a ``.cirrus.star`` over a real directory."""

from __future__ import annotations

from pathlib import Path

from adapters.cirrus_config.starlark import LocalSourceFiles, StarlarkContext, evaluate_starlark
from domain.cirrus_config.nodes import Node, Pairs, Scalar, Sequence


def no_yaml(text: str) -> Node:
    raise AssertionError(text)


def make_tree(root: Path) -> Path:
    (root / "repo" / "ci").mkdir(parents=True)
    (root / "repo" / "ci" / "build.sh").write_text("make all\n")
    (root / "repo" / "ci" / "lib.star").write_text(
        'def task(name, script):\n    return {"name": name, "script": script}\n'
    )
    (root / "secret.txt").write_text("outside")
    (root / "repo" / "link").symlink_to(root / "secret.txt")
    return root / "repo"


def test_read_and_list_see_files_under_the_root(tmp_path: Path) -> None:
    files = LocalSourceFiles(make_tree(tmp_path))
    assert files.read("ci/build.sh") == b"make all\n"
    assert files.read("/ci/build.sh") == b"make all\n"
    assert files.read("ci") is None
    assert files.read("nope") is None
    assert files.list("ci") == ["build.sh", "lib.star"]
    assert files.list(".") == ["ci", "link"]
    assert files.list("ci/build.sh") is None


def test_no_path_leads_out_of_the_root(tmp_path: Path) -> None:
    files = LocalSourceFiles(make_tree(tmp_path))
    assert files.read("../secret.txt") is None
    assert files.read("ci/../../secret.txt") is None
    assert files.read("link") is None
    assert files.list("..") == ["ci", "link"]  # ".." above the root is the root, as in the original


def test_a_star_file_reads_the_source_and_loads_a_module_from_it(tmp_path: Path) -> None:
    source = """
load("cirrus", "fs")
load("ci/lib.star", "task")
def main(ctx):
    return [task(name, fs.read("ci/" + name)) for name in fs.readdir("ci") if name.endswith(".sh")]
"""
    context = StarlarkContext(load_yaml=no_yaml, files=LocalSourceFiles(make_tree(tmp_path)))
    result = evaluate_starlark(source, context)
    assert result.key_list() == ["task"]
    task = result.get("task")
    assert isinstance(task, Pairs)
    assert task.get("name") == Scalar("build.sh", "build.sh")
    assert task.get("script") == Scalar("make all\n", "make all\n")
    assert not isinstance(task.get("script"), Sequence)
