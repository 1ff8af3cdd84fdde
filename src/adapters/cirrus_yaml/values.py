"""Typed reading of ``.cirrus.yml`` tree nodes, each refusal naming the task and the key path."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from adapters.cirrus_yaml.tree import Node, Pairs, Scalar, YamlList
from domain.build import BuildConfigError
from domain.units import parse_duration_seconds, parse_memory_mib

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class Where:
    """A position in the configuration: the task (``""`` outside tasks) and the key path."""

    task: str
    path: str = ""

    def at(self, key: str) -> Where:
        """Return the position of ``key`` below this one."""
        return Where(self.task, f"{self.path}.{key}" if self.path else key)

    def item(self, index: int) -> Where:
        """Return the position of list item ``index`` below this one."""
        return Where(self.task, f"{self.path}[{index}]")

    def fail(self, detail: str) -> BuildConfigError:
        """Return the error for a bad value here: ``"path" <detail>``."""
        return BuildConfigError(self.task, self.path, f'"{self.path}" {detail}')

    def unknown(self) -> BuildConfigError:
        """Return the error for a key that has no meaning here."""
        return BuildConfigError(self.task, self.path, f'unknown key "{self.path}"')


def read_pairs(node: Node, where: Where) -> Pairs:
    """Return a mapping node whose keys are all distinct."""
    if not isinstance(node, Pairs):
        raise where.fail("must be a mapping")
    seen: set[str] = set()
    for key in node.key_list():
        if key in seen:
            raise BuildConfigError(where.task, where.at(key).path, f'duplicate key "{key}"')
        seen.add(key)
    return node


def check_keys(pairs: Pairs, where: Where, allowed: frozenset[str]) -> None:
    """Refuse the first key of ``pairs`` that is not in ``allowed``."""
    for key in pairs.key_list():
        if key not in allowed:
            raise where.at(key).unknown()


def read_string(node: Node, where: Where) -> str:
    """Return a scalar as written (numbers included, ``null`` and booleans refused)."""
    if not isinstance(node, Scalar) or node.value is None or isinstance(node.value, bool):
        raise where.fail("must be a string")
    return node.text


def read_strings(node: Node, where: Where) -> tuple[str, ...]:
    """Return a string, or a non-empty list of strings, as a tuple."""
    if isinstance(node, YamlList):
        if not node.items:
            raise where.fail("must not be empty")
        return tuple(read_string(item, where.item(i)) for i, item in enumerate(node.items))
    return (read_string(node, where),)


def read_string_map(node: Node, where: Where) -> dict[str, str]:
    """Return a mapping of scalars as written; an empty value (``KEY:``) is the empty string."""
    pairs = read_pairs(node, where)
    result: dict[str, str] = {}
    for key, value in pairs.items:
        if not isinstance(value, Scalar):
            raise where.at(key).fail("must be a string")
        result[key] = "" if value.value is None else value.text
    return result


def read_number(node: Node, where: Where) -> float:
    """Return a finite, non-negative number (written as a number or a numeric string)."""
    if isinstance(node, Scalar) and not isinstance(node.value, bool):
        candidate: object = node.value
        if isinstance(candidate, str):
            try:
                candidate = float(candidate.strip())
            except ValueError:
                candidate = None
        if isinstance(candidate, int | float) and math.isfinite(candidate) and candidate >= 0:
            return float(candidate)
    raise where.fail("must be a non-negative number")


def read_number_map(node: Node, where: Where) -> dict[str, float]:
    """Return a mapping of non-negative numbers (``resources``)."""
    pairs = read_pairs(node, where)
    return {key: read_number(value, where.at(key)) for key, value in pairs.items}


def read_integer(node: Node, where: Where, maximum: int | None = None) -> int:
    """Return a non-negative whole number, at most ``maximum``."""
    if isinstance(node, Scalar) and not isinstance(node.value, bool):
        value = node.value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int) and value >= 0 and (maximum is None or value <= maximum):
            return value
    limit = f" up to {maximum}" if maximum is not None else ""
    raise where.fail(f"must be a whole number from 0{limit}")


def read_boolean(node: Node, where: Where) -> bool:
    """Return ``true``/``false`` (YAML booleans or those two words)."""
    if isinstance(node, Scalar):
        if isinstance(node.value, bool):
            return node.value
        if node.text.strip().lower() in ("true", "false"):
            return node.text.strip().lower() == "true"
    raise where.fail("must be true or false")


def read_memory_mib(node: Node, where: Where) -> int:
    """Return a Cirrus memory amount in MiB (``4G``, ``4096M``, ``4096``; below 100 means GiB)."""
    if not isinstance(node, Scalar) or isinstance(node.value, bool):
        raise where.fail("must be a memory amount such as 4G or 4096M")
    return _parsed(
        parse_memory_mib, node.value if isinstance(node.value, int) else node.text, where
    )


def read_duration_seconds(node: Node, where: Where) -> int:
    """Return the seconds of a duration such as ``30m``, ``2h`` or ``90s``."""
    if not isinstance(node, Scalar) or not isinstance(node.value, str):
        raise where.fail("must be a duration such as 30m, 2h or 90s")
    return _parsed(parse_duration_seconds, node.text, where)


def _parsed(parse: Callable[[_T], _R], value: _T, where: Where) -> _R:
    try:
        return parse(value)
    except ValueError as error:
        raise where.fail(f"is invalid: {error}") from error
