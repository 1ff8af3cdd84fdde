"""The configuration tree: what a ``.cirrus.yml`` (or a ``.cirrus.star``) says, with positions.

A plain YAML load would lose what Cirrus needs: repeated keys (several ``task:``), the text of a
scalar as written (``1.10`` is not the float ``1.1``) and where each node stands. Every source
(the YAML adapter, the Starlark adapter) produces this tree; the domain steps read only it.

Positions are 1-based; ``line == 0`` means "no position" (a node made by Starlark or by a
matrix expansion has none of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from domain.build import TOP_LEVEL, BuildConfigError


@dataclass(frozen=True, slots=True)
class Position:
    """Where a node starts in its source text (1-based; ``line == 0``: unknown)."""

    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}" if self.line else ""


NOWHERE = Position()


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar: ``text`` as written (after quoting and folding) and its resolved ``value``.

    ``value`` is ``None``, ``bool``, ``int``, ``float`` or ``str`` (YAML 1.1 resolution, as Go's
    YAML reader does for Cirrus: ``yes`` stays a string there but ``true`` is a boolean).
    """

    text: str
    value: object
    at: Position = NOWHERE


@dataclass(frozen=True, slots=True)
class Pairs:
    """A mapping as its key/value pairs in document order; keys may repeat."""

    items: tuple[tuple[str, Node], ...]
    at: Position = NOWHERE
    key_positions: tuple[Position, ...] = ()

    def key_list(self) -> list[str]:
        """Return the keys in order, repeats included."""
        return [key for key, _ in self.items]

    def get(self, key: str) -> Node | None:
        """Return the value of the last ``key`` (as a YAML map would keep it), or None."""
        found: Node | None = None
        for name, value in self.items:
            if name == key:
                found = value
        return found

    def key_at(self, index: int) -> Position:
        """Return where key ``index`` stands (the mapping's position when unknown)."""
        if index < len(self.key_positions):
            return self.key_positions[index]
        return self.at


@dataclass(frozen=True, slots=True)
class Sequence:
    """A sequence."""

    items: tuple[Node, ...]
    at: Position = NOWHERE


Node: TypeAlias = Scalar | Pairs | Sequence


class CirrusConfigError(BuildConfigError):
    """A configuration is refused: ``message`` says what, ``at`` where (may be ``NOWHERE``).

    ``str()`` reads ``task "build": <message> (line 4, column 3)``; outside any task it starts
    with ``top level:``. It is a ``BuildConfigError``, so the controller answers it with a 400.
    """

    def __init__(
        self, message: str, at: Position = NOWHERE, task: str = TOP_LEVEL, key: str = ""
    ) -> None:
        super().__init__(task, key, f"{message} ({at})" if at.line else message)
        self.detail = message
        self.at = at


def scalar_text(node: Scalar) -> str:
    """Return a scalar as Cirrus reads it into a string (``true``, ``1.10``, ``""`` for null)."""
    if node.value is None:
        return ""
    return node.text
