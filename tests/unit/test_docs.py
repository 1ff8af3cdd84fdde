"""The documentation under docs/ stays true to the code: its worker configurations load, its
command lines are real ``cirrus`` commands, and the configuration reference lists exactly the
keys of the configuration model; the metrics reference names every metric."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel

from adapters.config.loader import WorkerFlags, merge_worker_config, parse_worker_document
from adapters.config.worker_config import WorkerFileModel
from adapters.config.yaml_file import parse_yaml
from adapters.telemetry.instruments import METRIC_NAMES
from tests.cli_tree import NotACirrusCommand, check_cirrus_arguments, cirrus_invocations

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = DOCS / "worker-configuration.md"
WORKER_CONFIG_MARK = "# worker config"
SHELL_LANGUAGES = frozenset({"sh", "shell", "bash", "console"})
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
REFERENCE_ROW = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    language: str
    text: str


def doc_pages() -> list[Path]:
    """Every Markdown page under docs/."""
    return sorted(DOCS.rglob("*.md"))


def fenced_blocks() -> list[Block]:
    """Every fenced code block of every page, with where it starts."""
    blocks = []
    for page in doc_pages():
        text = page.read_text(encoding="utf-8")
        for found in FENCE.finditer(text):
            line = text.count("\n", 0, found.start()) + 1
            blocks.append(Block(page.name, line, found.group(1), found.group(2)))
    return blocks


def worker_config_blocks() -> list[Block]:
    """The YAML blocks marked as complete worker configuration files."""
    return [
        block
        for block in fenced_blocks()
        if block.language in ("yaml", "yml") and block.text.startswith(WORKER_CONFIG_MARK)
    ]


def command_lines() -> list[tuple[str, list[str]]]:
    """Every ``cirrus`` invocation in shell blocks and inline code, with where it was found."""
    found: list[tuple[str, list[str]]] = []
    for block in fenced_blocks():
        if block.language in SHELL_LANGUAGES:
            where = f"{block.page}:{block.line}"
            found += [(where, arguments) for arguments in cirrus_invocations(block.text)]
    for page in doc_pages():
        for span in INLINE_CODE.findall(page.read_text(encoding="utf-8")):
            if span.startswith("cirrus "):
                found += [(page.name, arguments) for arguments in cirrus_invocations(span)]
    return found


def model_key_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every key path of a config model as the reference writes it (``upstreams[].token``)."""
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        yield path
        nested = _nested_model(field.annotation)
        if nested is not None:
            inner, suffix = nested
            yield from model_key_paths(inner, f"{path}{suffix}.")


def _nested_model(annotation: object) -> tuple[type[BaseModel], str] | None:
    """The model inside an annotation (through ``| None``, ``list[...]`` and ``Annotated``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for argument in arguments:
            nested = _nested_model(argument)
            if nested is not None:
                return nested
    if origin is list:
        nested = _nested_model(arguments[0])
        if nested is not None:
            return nested[0], "[]"
    return None


def documented_key_paths() -> list[str]:
    """The first column of the reference's key table."""
    text = REFERENCE.read_text(encoding="utf-8")
    table = text.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    return REFERENCE_ROW.findall(table)


def test_the_docs_have_worker_configs_and_command_lines_to_check() -> None:
    assert len(worker_config_blocks()) >= 5
    assert len(command_lines()) >= 20


@pytest.mark.parametrize(
    "block", worker_config_blocks(), ids=lambda block: f"{block.page}:{block.line}"
)
def test_a_worker_config_in_the_docs_loads_and_validates(block: Block) -> None:
    document = parse_yaml(block.text, f"{block.page}:{block.line}")

    model = parse_worker_document(document, block.page)
    config = merge_worker_config(model, WorkerFlags(), {}, "docs-host.local")

    assert config.name


@pytest.mark.parametrize(("where", "arguments"), command_lines(), ids=lambda value: str(value)[:60])
def test_a_cirrus_command_line_in_the_docs_names_a_real_command_and_real_flags(
    where: str, arguments: list[str]
) -> None:
    try:
        check_cirrus_arguments(arguments)
    except NotACirrusCommand as error:
        pytest.fail(f"{where}: cirrus {' '.join(arguments)}: {error}")


def test_a_misspelled_flag_in_a_docs_command_line_would_be_caught() -> None:
    with pytest.raises(NotACirrusCommand, match="--follw"):
        check_cirrus_arguments(["build", "submit", "--follw"])


def test_every_key_of_the_configuration_model_is_in_the_reference() -> None:
    missing = set(model_key_paths(WorkerFileModel)) - set(documented_key_paths())

    assert missing == set()


def test_every_key_in_the_reference_exists_in_the_configuration_model() -> None:
    unknown = set(documented_key_paths()) - set(model_key_paths(WorkerFileModel))

    assert unknown == set()


def test_the_reference_lists_each_key_once() -> None:
    documented = documented_key_paths()

    assert len(documented) == len(set(documented))


def test_the_metrics_reference_names_every_worker_metric() -> None:
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")

    assert [name for name in METRIC_NAMES if f"`{name}`" not in text] == []
