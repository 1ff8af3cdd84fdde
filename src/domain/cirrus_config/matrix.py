"""Matrix expansion: every ``matrix:`` key multiplies the task that holds it, as Cirrus did.

Cirrus rewrote the whole configuration tree before reading any task, one matrix at a time:

1. find the first ``matrix:`` key in document order (depth first, a mapping's key before what
   it holds), wherever it stands: in a task, an instance (``container: matrix:``), an
   ``env:``, a row of another matrix, a list item;
2. find the nearest mapping above it held by a key ending in ``task``, ``docker_builder`` or
   ``pipe`` (``task``, ``lint_task``, ``megatask``, ...); there is none: the configuration is
   refused;
3. replace that task by one copy per row, in row order, all under the task's own key, where the
   task stood. In each copy the ``matrix`` key and its value give way to the row's pairs, at the
   place of the ``matrix`` key: nothing is merged here, so a row's ``env`` next to the task's
   ``env`` leaves two ``env`` keys, which the task reader combines as it combines any repeated
   key (the later one wins for a plain value; environments are merged);
4. start again until no ``matrix:`` is left.

Rows: a sequence of mappings (each mapping is a row; a null item is skipped, as Cirrus's YAML
reader drops null list items), or a mapping (each of its pairs is a row of that one pair, so
``matrix: {a: 1, a: 2}`` gives ``a: 1`` and ``a: 2``). Several ``matrix:`` keys in one task
give the product, the first key varying slowest; a matrix inside a row is expanded after the
row is in place. An empty matrix leaves no copy of its task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from domain.cirrus_config.nodes import CirrusConfigError, Node, Pairs, Position, Scalar, Sequence

MATRIX_KEY = "matrix"
TASK_SUFFIXES = ("task", "docker_builder", "pipe")
"""A mapping held by a key with one of these endings is what a matrix multiplies."""
MAX_EXPANSIONS = 2_000
"""How many matrices one configuration may expand; a product of a few wide matrices would
otherwise make more tasks than any build can hold."""

_Path = tuple[int, ...]
_Item = tuple[str, Node]


@dataclass(frozen=True, slots=True)
class _Found:
    """A ``matrix`` key: the path of the mapping holding it, its index there, and the task."""

    holder: _Path
    index: int
    task_depth: int


def expand_matrices(node: Node) -> Node:
    """Return ``node`` with every ``matrix:`` expanded into copies of its task, as Cirrus did."""
    # Everything before the last expanded task is free of matrices: searching on from there
    # finds the same first matrix as searching from the start, in time linear in the result.
    start: _Path = ()
    for _ in range(MAX_EXPANSIONS):
        found = _first_matrix(node, start)
        if found is None:
            return node
        node = _expand(node, found)
        start = found.holder[: found.task_depth]
    if _first_matrix(node, start) is None:
        return node
    raise CirrusConfigError(f"matrices expand more than {MAX_EXPANSIONS} times")


def _first_matrix(node: Node, start: _Path) -> _Found | None:
    path = _search(node, (), start)
    if path is None:
        return None
    holder, index = path[:-1], path[-1]
    for depth in range(len(holder), 0, -1):
        parent = _at(node, holder[: depth - 1])
        if isinstance(parent, Pairs) and parent.items[holder[depth - 1]][0].endswith(TASK_SUFFIXES):
            return _Found(holder, index, depth)
    matrix_holder = _at(node, holder)
    assert isinstance(matrix_holder, Pairs)
    raise CirrusConfigError(
        "matrix can be defined only under a task, docker_builder or pipe",
        matrix_holder.key_at(index),
    )


def _search(node: Node, path: _Path, start: _Path) -> _Path | None:
    """Return the path of the first ``matrix`` pair in document order (depth first) at or after
    the node at ``start``."""
    if isinstance(node, Scalar):
        return None
    if isinstance(node, Sequence):
        children: list[Node] = list(node.items)
    else:
        children = [value for _, value in node.items]
    first = start[0] if start else 0
    for index in range(first, len(children)):
        if isinstance(node, Pairs) and node.items[index][0] == MATRIX_KEY:
            return (*path, index)
        below = start[1:] if start and index == first else ()
        found = _search(children[index], (*path, index), below)
        if found is not None:
            return found
    return None


def _at(node: Node, path: _Path) -> Node:
    for index in path:
        assert not isinstance(node, Scalar)
        node = node.items[index] if isinstance(node, Sequence) else node.items[index][1]
    return node


def _expand(root: Node, found: _Found) -> Node:
    task_path = found.holder[: found.task_depth]
    task = _at(root, task_path)
    inner = found.holder[found.task_depth :]
    holder = _at(task, inner)
    assert isinstance(holder, Pairs)
    copies = [
        _edit(task, inner, _splicer(found.index, row))
        for row in _rows(holder.items[found.index][1], holder.key_at(found.index))
    ]
    task_parent = task_path[:-1]
    task_key = _at(root, task_parent)
    assert isinstance(task_key, Pairs)
    name = task_key.items[task_path[-1]][0]
    at = task_key.key_at(task_path[-1])
    replacement = _Row(tuple((name, copy) for copy in copies), tuple(at for _ in copies))
    return _edit(root, task_parent, _splicer(task_path[-1], replacement))


@dataclass(frozen=True, slots=True)
class _Row:
    """The pairs one row puts in place of the ``matrix`` key, with where their keys stand."""

    items: tuple[_Item, ...]
    key_positions: tuple[Position, ...]


def _rows(value: Node, at: Position) -> list[_Row]:
    if isinstance(value, Pairs):
        return [_Row((item,), (value.key_at(index),)) for index, item in enumerate(value.items)]
    if isinstance(value, Sequence):
        rows: list[_Row] = []
        for item in value.items:
            if isinstance(item, Scalar) and item.value is None:
                continue
            if not isinstance(item, Pairs):
                raise CirrusConfigError(
                    "matrix with a list can only contain maps as its items", item.at
                )
            positions = tuple(item.key_at(index) for index in range(len(item.items)))
            rows.append(_Row(item.items, positions))
        return rows
    raise CirrusConfigError("matrix should contain a collection", at)


def _splicer(index: int, row: _Row) -> Callable[[Node], Node]:
    """Return an edit putting ``row``'s pairs in place of pair ``index`` of a mapping."""

    def splice(node: Node) -> Node:
        assert isinstance(node, Pairs)
        items = (*node.items[:index], *row.items, *node.items[index + 1 :])
        positions: tuple[Position, ...] = ()
        if len(node.key_positions) == len(node.items):
            kept = node.key_positions
            positions = (*kept[:index], *row.key_positions, *kept[index + 1 :])
        return Pairs(items, node.at, positions)

    return splice


def _edit(node: Node, path: _Path, edit: Callable[[Node], Node]) -> Node:
    """Return ``node`` with its descendant at ``path`` replaced by ``edit`` of it."""
    if not path:
        return edit(node)
    index, rest = path[0], path[1:]
    if isinstance(node, Sequence):
        items = list(node.items)
        items[index] = _edit(items[index], rest, edit)
        return Sequence(tuple(items), node.at)
    assert isinstance(node, Pairs)
    pairs = list(node.items)
    key, value = pairs[index]
    pairs[index] = (key, _edit(value, rest, edit))
    return Pairs(tuple(pairs), node.at, node.key_positions)
