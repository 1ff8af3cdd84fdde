"""Turning pydantic validation errors into one ``ConfigError`` that names the key path."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from domain.errors import ConfigError


def key_path(loc: Sequence[int | str]) -> str:
    """Return a pydantic location as a key path: ``a.b[0].c``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def describe_value(value: object) -> str:
    """Return a YAML-ish rendering of an offending value for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


_EXPECTED: dict[str, str] = {
    "string_type": "a string",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "list_type": "a list",
}


def _message(error: ErrorDetails) -> str:
    """Return a short, user-facing message for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe_value(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {describe_value(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {describe_value(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {describe_value(value)}"
    return str(error["msg"])


def _unknown_sibling(first: ErrorDetails, errors: Sequence[ErrorDetails]) -> ErrorDetails | None:
    """An unknown key next to the missing key ``first`` (most likely its misspelling)."""
    if first["type"] != "missing":
        return None
    parent = first["loc"][:-1]
    return next(
        (e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent), None
    )


def config_error_from_validation(error: ValidationError) -> ConfigError:
    """Return the first problem of a validation error as a ``ConfigError``.

    A missing key reported next to an unknown one (``{sauce: ...}`` for ``{source: ...}``) is
    reported as the unknown key, naming the missing one too: the unknown key is what to fix.
    """
    errors = error.errors()
    first = errors[0]
    unknown = _unknown_sibling(first, errors)
    if unknown is not None:
        missing = [
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "missing" and e["loc"][:-1] == first["loc"][:-1]
        ]
        return ConfigError(
            key_path(list(unknown["loc"])),
            f"unknown key (required key missing here: {', '.join(missing)})",
        )
    loc = list(first["loc"])
    if loc and loc[-1] == "[key]":
        # A mapping key of the wrong type (``1: x`` under ``labels``): name the key itself.
        return ConfigError(key_path([*loc[:-2], str(loc[-2])]), "keys must be strings")
    return ConfigError(key_path(loc), _message(first))
