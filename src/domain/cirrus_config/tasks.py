"""The tasks of a configuration tree and the settings they collect from the top level.

As in the original parser (cirrus-cli ``pkg/parser``), a top-level key is a task when it ends with
``task`` (``task``, ``build_task``), ``pipe`` or ``docker_builder``; its fallback name is what
comes before (``build``), ``main`` when nothing does. Every other top-level key is a setting or
is ignored (a key holding YAML anchors).

Settings are *collectible*: ``env``, the instance (``container:``...), ``only_if``, ``skip``,
``timeout_in``... may stand at the top level and in the task; the task sees all of them merged,
top level first: maps key by key (``container: {cpu: 4}`` at the top and ``container: {image:
x}`` in a task give both), scalars and lists replaced (``additional_containers`` item by item).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.cirrus_config.commands import (
    Scope,
    effective_fields,
    read_commands,
    text,
    upload_cache_commands,
)
from domain.cirrus_config.context import InstanceResolver, WorkerRequirement
from domain.cirrus_config.nodes import (
    NOWHERE,
    CirrusConfigError,
    Node,
    Pairs,
    Position,
    Scalar,
    Sequence,
    scalar_text,
)
from domain.protocol import Command

TASK = "task"
PIPE = "pipe"
DOCKER_BUILDER = "docker_builder"
_KINDS = (TASK, PIPE, DOCKER_BUILDER)
# The one list the original merges item by item (its other lists are replaced).
_ADDITIONAL = "additional_containers"

ENVIRONMENT_KEYS = ("environment", "env")
"""Read in this order: ``env`` wins over ``environment`` (the original's field order)."""


@dataclass(frozen=True, slots=True)
class TaskNode:
    """A top-level task entry: its kind, its key, its fallback name and its map."""

    kind: str
    key: str
    fallback_name: str
    body: Pairs
    at: Position


@dataclass(frozen=True, slots=True)
class TaskBody:
    """What a task runs and, for a pipe or a Docker builder, where (a ``task`` takes its
    instance from the collected settings instead)."""

    commands: tuple[Command, ...]
    requirement: WorkerRequirement | None = None
    platform: Mapping[str, str] = field(default_factory=dict)


def task_nodes(root: Pairs) -> list[TaskNode]:
    """Return the task entries of ``root`` in document order (a repeated key gives several)."""
    nodes: list[TaskNode] = []
    for index, (key, value) in enumerate(root.items):
        kind = task_kind(key)
        if kind is None:
            continue
        prefix = key.removesuffix(kind)
        fallback = prefix.removesuffix("_") if prefix else "main"
        # ``task:`` with no map (or a scalar) is a task without fields, as the original reads it.
        body = value if isinstance(value, Pairs) else Pairs((), value.at)
        nodes.append(TaskNode(kind, key, fallback or "main", body, root.key_at(index)))
    return nodes


def task_kind(key: str) -> str | None:
    """Return ``task``, ``pipe`` or ``docker_builder`` when a top-level ``key`` declares one."""
    for kind in _KINDS:
        if key.endswith(kind):
            return kind
    return None


def collect(key: str, body: Pairs, root: Pairs) -> Node | None:
    """Return every ``key`` of the top level then of the task merged into one node (None when
    neither has it)."""
    found: Node | None = None
    for pairs in (root, body):
        for name, value in pairs.items:
            if name == key:
                found = value if found is None else merge(found, value, key)
    return None if found is None else deduplicate(found)


def merge(base: Node, other: Node, name: str) -> Node:
    """Return ``other`` merged over ``base`` as the original merges collectible values."""
    if name in ENVIRONMENT_KEYS:
        base, other = _single_map(base), _single_map(other)
    if isinstance(base, Pairs) and isinstance(other, Pairs):
        items = list(base.items)
        positions = [base.key_at(i) for i in range(len(base.items))]
        for index, (key, value) in enumerate(other.items):
            existing = _last_index(items, key)
            if existing is None:
                items.append((key, value))
                positions.append(other.key_at(index))
            else:
                items[existing] = (key, merge(items[existing][1], value, key))
                positions[existing] = other.key_at(index)
        return Pairs(tuple(items), other.at, tuple(positions))
    if isinstance(base, Sequence) and isinstance(other, Sequence) and name == _ADDITIONAL:
        merged = [
            merge(base.items[i], item, "") if i < len(base.items) else item
            for i, item in enumerate(other.items)
        ]
        merged.extend(base.items[len(other.items) :])
        return Sequence(tuple(merged), other.at)
    return other


def deduplicate(node: Node) -> Node:
    """Return ``node`` with repeated keys of a map merged into their first place (what a ``<<``
    merge of a collectible value leaves behind)."""
    if not isinstance(node, Pairs):
        return node
    items: list[tuple[str, Node]] = []
    positions: list[Position] = []
    for index, (key, value) in enumerate(node.items):
        existing = _first_index(items, key)
        if existing is None:
            items.append((key, value))
            positions.append(node.key_at(index))
        else:
            items[existing] = (key, merge(items[existing][1], deduplicate(value), key))
    return Pairs(tuple(items), node.at, tuple(positions))


def environment_map(node: Node, task: str) -> dict[str, str]:
    """Return an ``env`` value (a map or a list of maps) as raw strings; a list value is its
    items joined by newlines, as the original flattens it."""
    if isinstance(node, Scalar) and node.value is None:
        return {}
    if isinstance(node, Sequence):
        result: dict[str, str] = {}
        for item in node.items:
            result.update(environment_map(item, task) if isinstance(item, Pairs) else _no_map(item))
        return result
    if not isinstance(node, Pairs):
        raise CirrusConfigError("expected a map or a list of maps", node.at, task, "env")
    result = {}
    for index, (key, value) in enumerate(node.items):
        result[key] = _flattened(value, node.key_at(index), task)
    return result


def parse_seconds(text: str, at: Position, task: str) -> int:
    """Return a ``timeout_in`` in seconds: digits and ``h``, ``m`` (the default) or ``s``."""
    match = re.fullmatch(r"\s*(\d+)\s*([hms]?)\s*", text.lower())
    if match is None or int(match[1]) <= 0:
        raise CirrusConfigError(
            f'"timeout_in" must be a positive number of minutes or a duration like 90m, 2h, '
            f'30s, not "{text}"',
            at,
            task,
            "timeout_in",
        )
    return int(match[1]) * {"h": 3600, "m": 60, "": 60, "s": 1}[match[2]]


def trigger_is_manual(text: str, at: Position, task: str) -> bool:
    """Return whether ``trigger_type`` is ``manual`` (``automatic`` is the default)."""
    value = text.strip().lower()
    if value not in {"manual", "automatic"}:
        raise CirrusConfigError(
            f'"trigger_type" must be manual or automatic, not "{text}"', at, task, "trigger_type"
        )
    return value == "manual"


def scalar_or_fail(node: Node, key: str, task: str) -> str:
    """Return a scalar's text; a map or a list is refused naming ``key``."""
    if not isinstance(node, Scalar):
        raise CirrusConfigError(f'"{key}" must be a scalar value', node.at, task, key)
    return scalar_text(node)


def _flattened(node: Node, at: Position, task: str) -> str:
    if isinstance(node, Scalar):
        return scalar_text(node)
    if isinstance(node, Sequence) and all(isinstance(item, Scalar) for item in node.items):
        return "\n".join(scalar_text(item) for item in node.items if isinstance(item, Scalar))
    raise CirrusConfigError(
        "expected a scalar value or a list with scalar values", node.at or at, task, "env"
    )


def _no_map(item: Node) -> Mapping[str, str]:
    raise CirrusConfigError("expected a map", item.at, key="env")


def _single_map(node: Node) -> Node:
    if not isinstance(node, Sequence) or not all(isinstance(i, Pairs) for i in node.items):
        return node
    merged: Node = Pairs((), node.at)
    for item in node.items:
        merged = merge(merged, item, "")
    return merged


def _last_index(items: list[tuple[str, Node]], key: str) -> int | None:
    for index in range(len(items) - 1, -1, -1):
        if items[index][0] == key:
            return index
    return None


def _first_index(items: list[tuple[str, Node]], key: str) -> int | None:
    for index, (name, _value) in enumerate(items):
        if name == key:
            return index
    return None


def read_body(
    node: TaskNode, scope: Scope, instances: InstanceResolver, build: Mapping[str, str]
) -> TaskBody:
    """Return the commands of a task (closed by the automatic cache uploads) and, for a pipe or
    a Docker builder, the requirement its kind implies."""
    if node.kind == PIPE:
        return _pipe(node, scope, instances)
    commands = read_commands(effective_fields(node.body), scope)
    commands.extend(upload_cache_commands(commands))
    if node.kind != DOCKER_BUILDER:
        return TaskBody(tuple(commands))
    platform = node.body.get("platform")
    os = text(platform, platform.at, scope).lower() if platform is not None else "linux"
    if os not in {"linux", "windows"}:
        raise CirrusConfigError(f'unknown platform name: "{os}"', _at(platform), scope.task)
    described = Pairs(tuple((k, v) for k, v in node.body.items if k in _BUILDER_FIELDS))
    if DOCKER_BUILDER in instances.kinds():
        requirement = instances.resolve(DOCKER_BUILDER, described, scope.environment)
    else:
        requirement = WorkerRequirement(labels={"os": os})
    return TaskBody(tuple(commands), requirement, {"CIRRUS_OS": os})


_BUILDER_FIELDS = frozenset({"platform", "os_version", "architecture", "cpu", "memory"})
_PIPE_DEFAULTS = (("cpu", "2"), ("memory", "4096"))


def _pipe(node: TaskNode, scope: Scope, instances: InstanceResolver) -> TaskBody:
    steps = node.body.get("steps")
    if steps is None:
        raise CirrusConfigError('required field "steps" was not set', node.at, scope.task, "steps")
    if not isinstance(steps, Sequence):
        raise CirrusConfigError("steps should be a list", _at(steps), scope.task, "steps")
    commands: list[Command] = []
    images: list[str] = []
    for step in steps.items:
        pairs = step if isinstance(step, Pairs) else Pairs((), step.at)
        image = pairs.get("image")
        if image is None:
            raise CirrusConfigError('required field "image" was not set', _at(step), scope.task)
        images.append(text(image, _at(image), scope))
        found = read_commands(effective_fields(pairs), scope, commands)
        if not found:
            raise CirrusConfigError(
                "pipe steps defined without scripts inside them", _at(step), scope.task
            )
        commands.extend(found)
    commands.extend(upload_cache_commands(commands))
    # One worker runs the whole pipe, in the image of its first step (documented difference).
    resources = node.body.get("resources")
    sizes = dict(_PIPE_DEFAULTS)
    if isinstance(resources, Pairs):
        sizes.update((k, text(v, _at(v), scope)) for k, v in resources.items if k in sizes)
    described = Pairs(
        (
            ("image", Scalar(images[0] if images else "", images[0] if images else "")),
            *((key, Scalar(value, value)) for key, value in sizes.items()),
        ),
        node.at,
    )
    requirement = instances.resolve("container", described, scope.environment)
    return TaskBody(tuple(commands), requirement, {"CIRRUS_OS": "linux"})


def _at(node: Node | None) -> Position:
    return NOWHERE if node is None else node.at
