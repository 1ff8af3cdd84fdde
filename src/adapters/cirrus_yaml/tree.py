"""Loading ``.cirrus.yml`` text into a tree that keeps what a plain YAML load would lose.

A plain ``yaml.safe_load`` keeps only the last of several ``task:`` keys and turns ``1.10`` into
the float ``1.1``. This tree keeps every mapping as its ordered key/value pairs (duplicates
included) and every scalar with its text as written next to its resolved value. Merge keys
(``<<: *anchor``) are applied here: merged pairs take the place of the ``<<`` key, and keys
written explicitly in the mapping win over merged ones, as YAML 1.1 specifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlStructureError(ValueError):
    """The text is not YAML, or uses YAML in a way this configuration cannot."""


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar: ``text`` as written (after quoting and folding) and its resolved ``value``."""

    text: str
    value: object
    line: int


@dataclass(frozen=True, slots=True)
class Pairs:
    """A mapping as its key/value pairs in document order; keys may repeat."""

    items: tuple[tuple[str, Node], ...]
    line: int

    def key_list(self) -> list[str]:
        """Return the keys in order, repeats included."""
        return [key for key, _ in self.items]


@dataclass(frozen=True, slots=True)
class YamlList:
    """A YAML sequence."""

    items: tuple[Node, ...]
    line: int


Node: TypeAlias = Scalar | Pairs | YamlList


def load_tree(text: str) -> Node | None:
    """Return the tree of a single-document YAML text, or None for an empty document."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        return _convert(root, loader, set())
    except yaml.YAMLError as error:
        raise YamlStructureError(f"invalid YAML: {error}") from error
    finally:
        loader.dispose()


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _enter(node: yaml.Node, active: set[int]) -> None:
    # An alias may point at a node that contains it; following it would never end.
    if id(node) in active:
        raise YamlStructureError(f"line {_line(node)}: recursive YAML alias")
    active.add(id(node))


def _convert(node: yaml.Node, loader: yaml.SafeLoader, active: set[int]) -> Node:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_object(node, deep=True)
        return Scalar(str(node.value), value, _line(node))
    if isinstance(node, yaml.MappingNode):
        return _convert_mapping(node, loader, active)
    _enter(node, active)
    try:
        return YamlList(tuple(_convert(child, loader, active) for child in node.value), _line(node))
    finally:
        active.discard(id(node))


def _convert_mapping(node: yaml.MappingNode, loader: yaml.SafeLoader, active: set[int]) -> Pairs:
    _enter(node, active)
    try:
        return _convert_pairs(node, loader, active)
    finally:
        active.discard(id(node))


def _convert_pairs(node: yaml.MappingNode, loader: yaml.SafeLoader, active: set[int]) -> Pairs:
    explicit_keys = {
        str(key.value)
        for key, _ in node.value
        if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG
    }
    items: list[tuple[str, Node]] = []
    merged_keys: set[str] = set()
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE_TAG:
            for source in _merge_sources(value_node):
                for key, value in _convert_mapping(source, loader, active).items:
                    # Explicit keys win over merged ones, and earlier merge sources over later.
                    if key not in explicit_keys and key not in merged_keys:
                        merged_keys.add(key)
                        items.append((key, value))
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlStructureError(f"line {_line(key_node)}: mapping keys must be plain strings")
        items.append((str(key_node.value), _convert(value_node, loader, active)))
    return Pairs(tuple(items), _line(node))


def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode]:
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode) and all(
        isinstance(child, yaml.MappingNode) for child in node.value
    ):
        return list(node.value)
    raise YamlStructureError(f"line {_line(node)}: '<<' must merge a mapping or a list of mappings")
