"""Reading the fields of an instance node (``container:``, ``persistent_worker:``, ...) as Cirrus
reads them: every value expanded with the task's environment, numbers parsed from that text,
memory in MiB with Cirrus's units.

As in the original parser, unknown fields are ignored (hosted Cirrus knew more of them than any
public parser did: ``greedy``, ``zone``, ``scopes``...), a repeated field counts once with its
last value, and ``container:`` with no value is an empty mapping. A value of the wrong shape is
refused with its position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from domain.cirrus_config.expand import expand
from domain.cirrus_config.nodes import (
    CirrusConfigError,
    Node,
    Pairs,
    Position,
    Scalar,
    Sequence,
    scalar_text,
)

# Below this a memory value without unit means GiB ("memory: 8" is 8 GiB), as in Cirrus.
_MEBIBYTE_BORDER = 100
_MEMORY = re.compile(r"^(.*\d)?(\D*)$")
_MEMORY_UNITS = {"": 1, "m": 1, "mb": 1, "mi": 1, "g": 1024, "gb": 1024, "gi": 1024}
_MAX_UINT32 = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Fields:
    """An instance mapping read once: the last value of each field, and the mapping's position."""

    values: Mapping[str, Node]
    order: tuple[str, ...]
    at: Position
    environment: Mapping[str, str]

    def node(self, name: str) -> Node | None:
        """Return the node of field ``name``, or None."""
        return self.values.get(name)

    def text(self, name: str, default: str = "") -> str:
        """Return field ``name`` as an expanded string (``default`` when absent)."""
        node = self.values.get(name)
        return default if node is None else string_value(node, name, self.environment)

    def float_value(self, name: str, default: float = 0.0) -> float:
        """Return field ``name`` as a number (``cpu: 0.5``)."""
        node = self.values.get(name)
        if node is None:
            return default
        text = string_value(node, name, self.environment)
        try:
            return float(text)
        except ValueError:
            raise CirrusConfigError(f"{name}: {text!r} is not a number", node.at) from None

    def int_value(self, name: str, default: int = 0) -> int:
        """Return field ``name`` as a non-negative integer (``cpu: 4`` of a VM, ``port``)."""
        node = self.values.get(name)
        if node is None:
            return default
        text = string_value(node, name, self.environment)
        if not text.isdecimal() or int(text) > _MAX_UINT32:
            raise CirrusConfigError(f"{name}: {text!r} is not a whole number", node.at)
        return int(text)

    def memory_value(self, name: str, default: int = 0) -> int:
        """Return field ``name`` as MiB (``4G``, ``512Mi``, ``8`` meaning 8 GiB)."""
        node = self.values.get(name)
        if node is None:
            return default
        text = string_value(node, name, self.environment)
        try:
            return parse_memory_mib(text)
        except ValueError as error:
            raise CirrusConfigError(f"{name}: {error}", node.at) from None

    def flag(self, name: str) -> bool:
        """Return field ``name`` as a boolean (``true``/``false`` after expansion)."""
        node = self.values.get(name)
        if node is None:
            return False
        text = string_value(node, name, self.environment).strip().lower()
        if text not in {"true", "false"}:
            raise CirrusConfigError(f"{name}: {text!r} is neither true nor false", node.at)
        return text == "true"

    def string_map(self, name: str) -> dict[str, str]:
        """Return field ``name``, a map or a list of maps, with expanded values."""
        node = self.values.get(name)
        return {} if node is None else string_map(node, name, self.environment)


def read_fields(node: Node, kind: str, environment: Mapping[str, str]) -> Fields:
    """Return the fields of instance ``kind``; a null value is an empty mapping."""
    if isinstance(node, Scalar) and node.value is None:
        return Fields({}, (), node.at, environment)
    if not isinstance(node, Pairs):
        raise CirrusConfigError(f"{kind}: expected a mapping of fields", node.at)
    values: dict[str, Node] = {}
    for key, value in node.items:
        values.pop(key, None)  # keep the order of the last occurrence, which is the one read
        values[key] = value
    return Fields(values, tuple(values), node.at, environment)


def string_value(node: Node, name: str, environment: Mapping[str, str]) -> str:
    """Return a scalar field as an expanded string, or refuse a mapping or list."""
    if not isinstance(node, Scalar):
        raise CirrusConfigError(f"{name}: expected a single value", node.at)
    return expand(scalar_text(node), environment)


def string_map(node: Node, name: str, environment: Mapping[str, str]) -> dict[str, str]:
    """Return a map (or a list of maps, merged in order) with expanded values."""
    if isinstance(node, Scalar) and node.value is None:
        return {}
    maps = node.items if isinstance(node, Sequence) else (node,)
    result: dict[str, str] = {}
    for item in maps:
        if not isinstance(item, Pairs):
            raise CirrusConfigError(f"{name}: expected a mapping", item.at)
        for key, value in item.items:
            result[key] = string_value(value, f"{name}.{key}", environment)
    return result


def float_map(node: Node, name: str, environment: Mapping[str, str]) -> dict[str, float]:
    """Return a map of numbers (``resources: {tart-vms: 1}``) with expanded values."""
    result: dict[str, float] = {}
    for key, text in string_map(node, name, environment).items():
        try:
            result[key] = float(text)
        except ValueError:
            raise CirrusConfigError(f"{name}.{key}: {text!r} is not a number", node.at) from None
    return result


def parse_memory_mib(text: str) -> int:
    """Return a memory amount in MiB: ``4G``/``4Gi``/``4GB`` → 4096, ``512M`` → 512, ``8`` → 8192.

    Cirrus reads whole numbers only; a bare number under 100 is taken as GiB for convenience.
    """
    match = _MEMORY.match(text.strip().lower())
    digits, unit = (match.group(1) or "", match.group(2)) if match else ("", "")
    if unit not in _MEMORY_UNITS:
        raise ValueError(f"unsupported memory unit {unit!r} in {text!r}")
    if not digits.isdecimal() or int(digits) > _MAX_UINT32:
        raise ValueError(f"{text!r} is not a memory amount")
    amount = int(digits)
    if unit == "" and amount < _MEBIBYTE_BORDER:
        return amount * 1024
    return amount * _MEMORY_UNITS[unit]
