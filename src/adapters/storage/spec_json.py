"""JSON text of what a store keeps in columns: task specs, build sources, string and resource
maps, id lists.

Isolation and commands use the proto3 JSON mapping of the Twirp codec, so a
stored spec reads like the wire messages and stays readable when new fields appear (absent
means default). Every ``loads_*`` raises ``StoreError`` on text it cannot read.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence

from adapters.twirp.errors import ProtocolDecodeError
from adapters.twirp.isolation_mapping import decode_isolation, encode_isolation
from adapters.twirp.task_mapping import decode_command, encode_command
from domain.build import TaskSpec
from domain.source import BuildSource, SourceError, source_from_json, source_to_json
from domain.store import StoreError


def _dumps(value: object) -> str:
    # Sorted keys and no spaces: equal values give equal text, which keeps rows comparable.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise StoreError(f"stored {what} is not JSON: {error}") from error


def dumps_task_spec(spec: TaskSpec) -> str:
    """Return a task spec as JSON text."""
    return _dumps(
        {
            "name": spec.name,
            "labels": dict(spec.labels),
            "isolation": encode_isolation(spec.isolation),
            "resources": dict(spec.resources),
            "environment": dict(spec.environment),
            "timeoutSeconds": spec.timeout_seconds,
            "dependsOn": list(spec.depends_on),
            "commands": [encode_command(command) for command in spec.commands],
            # Written only when set, so the specs of plain tasks keep their text.
            **({"alias": spec.alias} if spec.alias else {}),
            **({"allowFailures": True} if spec.allow_failures else {}),
            **({"skipReason": spec.skip_reason} if spec.skip_reason else {}),
            **({"manual": True} if spec.manual else {}),
            **({"autoCancellation": True} if spec.auto_cancellation else {}),
            **({"notices": list(spec.notices)} if spec.notices else {}),
        }
    )


SPEC_CACHE_SIZE = 4096
"""Parsed task specs kept by their text: a spec never changes once stored, and the scheduler
and the task calls read the same few specs over and over."""


@functools.lru_cache(maxsize=SPEC_CACHE_SIZE)
def loads_task_spec(text: str) -> TaskSpec:
    """Read a task spec written by ``dumps_task_spec`` (cached: ``TaskSpec`` is immutable)."""
    body = _loads(text, "task spec")
    if not isinstance(body, dict):
        raise StoreError("stored task spec is not a JSON object")
    try:
        return TaskSpec(
            name=str(body["name"]),
            labels=_str_map(body.get("labels", {}), "labels"),
            isolation=decode_isolation(body.get("isolation", {"none": {}}), "isolation"),
            resources=_float_map(body.get("resources", {}), "resources"),
            environment=_str_map(body.get("environment", {}), "environment"),
            timeout_seconds=int(body["timeoutSeconds"]),
            depends_on=tuple(str(name) for name in body.get("dependsOn", [])),
            commands=tuple(
                decode_command(command, f"commands[{index}]")
                for index, command in enumerate(body.get("commands", []))
            ),
            alias=str(body.get("alias", "")),
            allow_failures=bool(body.get("allowFailures", False)),
            skip_reason=str(body.get("skipReason", "")),
            manual=bool(body.get("manual", False)),
            auto_cancellation=bool(body.get("autoCancellation", False)),
            notices=tuple(str(notice) for notice in body.get("notices", [])),
        )
    except (KeyError, TypeError, ValueError, ProtocolDecodeError) as error:
        raise StoreError(f"stored task spec is malformed: {error}") from error


def _str_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise StoreError(f"stored {what} is not a JSON object")
    return {str(key): str(item) for key, item in value.items()}


def _float_map(value: object, what: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise StoreError(f"stored {what} is not a JSON object")
    try:
        return {str(key): float(item) for key, item in value.items()}
    except (TypeError, ValueError) as error:
        raise StoreError(f"stored {what} holds a non-number: {error}") from error


def dumps_str_map(value: Mapping[str, str]) -> str:
    """Return a string map as JSON text."""
    return _dumps(dict(value))


def loads_str_map(text: str) -> dict[str, str]:
    """Read a string map written by ``dumps_str_map``."""
    return _str_map(_loads(text, "map"), "map")


def dumps_float_map(value: Mapping[str, float]) -> str:
    """Return a resource map as JSON text."""
    return _dumps({key: float(amount) for key, amount in value.items()})


def loads_float_map(text: str) -> dict[str, float]:
    """Read a resource map written by ``dumps_float_map``."""
    return _float_map(_loads(text, "resource map"), "resource map")


def dumps_str_list(values: Sequence[str]) -> str:
    """Return a list of strings (e.g. task ids) as JSON text."""
    return _dumps(list(values))


def loads_str_list(text: str) -> tuple[str, ...]:
    """Read a list written by ``dumps_str_list``."""
    body = _loads(text, "list")
    if not isinstance(body, list):
        raise StoreError("stored list is not a JSON array")
    return tuple(str(item) for item in body)


def dumps_source(source: BuildSource | None) -> str:
    """Return a build's source as JSON text (the API's ``"source"`` object; ``{}``: none)."""
    return _dumps(source_to_json(source or BuildSource()))


def loads_source(text: str) -> BuildSource:
    """Read a source written by ``dumps_source``."""
    body = _loads(text, "build source")
    if not isinstance(body, dict):
        raise StoreError("stored build source is not a JSON object")
    try:
        return source_from_json(body)
    except SourceError as error:
        raise StoreError(f"stored build source is malformed: {error}") from error
