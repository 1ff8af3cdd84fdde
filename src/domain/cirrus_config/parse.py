"""The last step of the pipeline: configuration trees → a validated ``BuildSpec``.

``parse_config`` follows the original parser's order (cirrus-cli ``pkg/parser/parser.go``): the
Starlark tasks are appended to the YAML ones, matrices are expanded, then each task is read:
environment, instance (which sets ``CIRRUS_OS``/``CIRRUS_ARCH``), name, ``only_if`` (a false one
leaves the task out), the other settings and its commands. Dependencies are resolved last, by
name or alias; a dependency on a task left out by ``only_if`` is dropped, as Cirrus did.

Expansion: a field (name, alias, ``depends_on``, paths...) sees the task's environment overridden
by the build's (Cirrus's own variables win there); the task's ``env`` values are expanded the way
the agent expands them, with the build's and the automatic variables as the outer environment,
and unknown references (``$HOME``, ``$PATH``) kept for the worker's shell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from domain.build import BuildSpec, TaskSpec, validate_build
from domain.cirrus_config.commands import CLONE, Scope, condition, strings, text
from domain.cirrus_config.context import (
    BuildContext,
    ForeignSecretError,
    SecretError,
    WorkerRequirement,
)
from domain.cirrus_config.expand import expand, expand_environment
from domain.cirrus_config.matrix import expand_matrices
from domain.cirrus_config.nodes import CirrusConfigError, Node, Pairs, Position
from domain.cirrus_config.tasks import (
    ENVIRONMENT_KEYS,
    TaskBody,
    TaskNode,
    collect,
    environment_map,
    parse_seconds,
    read_body,
    scalar_or_fail,
    task_nodes,
    trigger_is_manual,
)
from domain.protocol import CloneInstruction, Command

# Any ``ENCRYPTED[...]`` inside a value (the controller decrypts them wherever they stand).
_ENCRYPTED = re.compile(r"ENCRYPTED\[[^\[\]\s]*\]")

STATIC_VARIABLES: Mapping[str, str] = {
    "CI": "true",
    "CIRRUS_CI": "true",
    "CONTINUOUS_INTEGRATION": "true",
    "CIRRUS_ENVIRONMENT": "CI",
}
"""Variables every task has, as on hosted Cirrus (``cirrus run`` says ``CLI`` instead)."""


@dataclass(frozen=True, slots=True)
class _Draft:
    """A task read so far: what ``TaskSpec`` needs, before dependencies and node numbering."""

    name: str
    alias: str
    fallback_name: str
    raw_environment: dict[str, str]
    automatic: dict[str, str]
    requirement: WorkerRequirement
    depends_on: list[str]
    depends_at: Position
    body: TaskBody
    settings: dict[str, object] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    """Variables left out because their value is a hosted Cirrus CI secret."""


def parse_config(roots: Sequence[Node | None], context: BuildContext) -> BuildSpec:
    """Return the validated build that the configuration ``roots`` (the YAML tree, then the
    Starlark ones) describe, or raise ``CirrusConfigError`` naming the problem."""
    root = expand_matrices(_combined(roots))
    if not isinstance(root, Pairs):
        raise CirrusConfigError("the configuration must be a mapping", root.at)
    drafts: list[_Draft] = []
    disabled: set[str] = set()
    for node in task_nodes(root):
        draft, enabled = _read_task(node, root, context)
        if enabled:
            drafts.append(draft)
        else:
            disabled.update(name for name in (draft.name, draft.alias) if name)
    dependencies = _resolve_dependencies(drafts, disabled)
    tasks = [
        _spec(draft, index, len(drafts), dependencies[index], context)
        for index, draft in enumerate(drafts)
    ]
    spec = BuildSpec(tuple(tasks), context.environment)
    if not tasks and disabled:
        return spec  # every task left out by its only_if: an empty build, as on Cirrus
    return validate_build(spec)


def _combined(roots: Sequence[Node | None]) -> Node:
    items: list[tuple[str, Node]] = []
    positions: list[Position] = []
    for root in roots:
        if root is None:
            continue
        if not isinstance(root, Pairs):
            raise CirrusConfigError(
                "the configuration must be a mapping of tasks and settings", root.at
            )
        items.extend(root.items)
        positions.extend(root.key_at(i) for i in range(len(root.items)))
    return Pairs(tuple(items), positions[0] if positions else Position(), tuple(positions))


def _read_task(node: TaskNode, root: Pairs, context: BuildContext) -> tuple[_Draft, bool]:
    build = dict(context.environment)
    label = node.fallback_name
    raw = _environment(node, root, label)
    requirement, platform = _instance(node, root, raw, build, context, label)
    # What a field sees: the task's variables (expanded once), Cirrus's own winning over them.
    own = expand_environment(raw, {**build, **platform}, keep_unknown=True)
    fields = {**platform, **own, **build}
    scope = Scope(fields, label, context.changed_files)
    name = _own_text(node.body, "name", scope) or node.fallback_name
    scope = Scope({**fields, "CIRRUS_TASK_NAME": name}, name, context.changed_files)
    alias = _own_text(node.body, "alias", scope)
    depends_on, depends_at = _depends_on(node.body, scope)
    body = read_body(node, scope, context.instances, build)
    draft = _Draft(
        name=name,
        alias=alias,
        fallback_name=node.fallback_name,
        raw_environment=raw,
        automatic={**platform, **body.platform},
        requirement=body.requirement or requirement,
        depends_on=depends_on,
        depends_at=depends_at,
        body=body,
    )
    only_if = collect("only_if", node.body, root)
    enabled = only_if is None or condition(only_if, only_if.at or node.at, scope)
    if enabled:
        _check_secrets(node, root, draft, context)
        draft.settings.update(_settings(node, root, scope, build))
    return draft, enabled


def _environment(node: TaskNode, root: Pairs, task: str) -> dict[str, str]:
    environment: dict[str, str] = {}
    for key in ENVIRONMENT_KEYS:
        value = collect(key, node.body, root)
        if value is not None:
            environment.update(environment_map(value, task))
    return environment


def _check_secrets(node: TaskNode, root: Pairs, draft: _Draft, context: BuildContext) -> None:
    """Refuse an ``ENCRYPTED[...]`` value this controller cannot decrypt: passing it on verbatim
    would hand the task a meaningless value (the spec keeps the encrypted text).

    A value in another system's format (hosted Cirrus CI's, which every migrated
    ``.cirrus.yml`` still carries) cannot be decrypted by any controller: its variable is left
    unset, with a notice on the task, so that the tasks that do not need it still run.
    """
    for name, raw in draft.raw_environment.items():
        for secret in _ENCRYPTED.findall(raw):
            try:
                context.secrets.decrypt(secret, context.repository)
            except ForeignSecretError:
                if name not in draft.unset:
                    draft.unset.append(name)
            except SecretError as error:
                where = collect("env", node.body, root) or collect("environment", node.body, root)
                raise CirrusConfigError(
                    f'cannot decrypt the value of "{name}": {error}',
                    where.at if where is not None else node.at,
                    draft.name,
                    "env",
                ) from error


def _instance(
    node: TaskNode,
    root: Pairs,
    raw: Mapping[str, str],
    build: Mapping[str, str],
    context: BuildContext,
    task: str,
) -> tuple[WorkerRequirement, dict[str, str]]:
    kinds = context.instances.kinds() - {"docker_builder"}
    kind = _last_key(node.body, kinds) or _last_key(root, kinds)
    if kind is None or node.kind != "task":
        return WorkerRequirement(), {}
    value = collect(kind, node.body, root)
    assert value is not None  # the key was found above
    environment = {**expand_environment(raw, build, keep_unknown=True), **build}
    try:
        requirement = context.instances.resolve(kind, value, environment)
    except CirrusConfigError as error:
        raise CirrusConfigError(error.detail, error.at, task, error.key or kind) from error
    return requirement, platform_variables(requirement)


def platform_variables(requirement: WorkerRequirement) -> dict[str, str]:
    """Return ``CIRRUS_OS`` and ``CIRRUS_ARCH`` as the instance's labels tell them."""
    variables = {}
    if requirement.labels.get("os"):
        variables["CIRRUS_OS"] = requirement.labels["os"]
    if requirement.labels.get("arch"):
        variables["CIRRUS_ARCH"] = requirement.labels["arch"]
    return variables


def _settings(
    node: TaskNode, root: Pairs, scope: Scope, build: Mapping[str, str]
) -> dict[str, object]:
    settings: dict[str, object] = {}
    skip = collect("skip", node.body, root)
    if skip is not None and condition(skip, skip.at or node.at, scope):
        expression = scalar_or_fail(skip, "skip", scope.task).strip()
        settings["skip_reason"] = f'skipped by "skip: {expression}"'
    failures = collect("allow_failures", node.body, root)
    settings["allow_failures"] = failures is not None and condition(failures, failures.at, scope)
    timeout = collect("timeout_in", node.body, root)
    if timeout is not None:
        seconds = expand(scalar_or_fail(timeout, "timeout_in", scope.task), scope.environment)
        settings["timeout"] = parse_seconds(seconds, timeout.at, scope.task)
    # Hosted Cirrus cancels superseded builds of every branch but the default one by default.
    cancel = build.get("CIRRUS_BRANCH", "") != build.get("CIRRUS_DEFAULT_BRANCH", "")
    cancellation = collect("auto_cancellation", node.body, root)
    if cancellation is not None:
        cancel = condition(cancellation, cancellation.at, scope)
    settings["auto_cancellation"] = cancel
    manual = False
    trigger = collect("trigger_type", node.body, root)
    if trigger is not None:
        kind = expand(scalar_or_fail(trigger, "trigger_type", scope.task), scope.environment)
        manual = trigger_is_manual(kind, trigger.at, scope.task)
    labels = collect("required_pr_labels", node.body, root)
    if labels is not None and build.get("CIRRUS_PR"):
        present = {label.strip() for label in build.get("CIRRUS_PR_LABELS", "").split(",")}
        # Cirrus held such a task until the pull request had the labels: a trigger here.
        manual = manual or not set(strings(labels, labels.at, scope)) <= present
    settings["manual"] = manual
    return settings


def _own_text(body: Pairs, key: str, scope: Scope) -> str:
    value = body.get(key)
    if value is None:
        return ""
    return text(value, _key_position(body, key), scope)


def _depends_on(body: Pairs, scope: Scope) -> tuple[list[str], Position]:
    value = body.get("depends_on")
    if value is None:
        return [], body.at
    at = _key_position(body, "depends_on")
    return [name for name in strings(value, at, scope) if name], at


def _resolve_dependencies(drafts: Sequence[_Draft], disabled: set[str]) -> list[tuple[str, ...]]:
    fallbacks = {draft.fallback_name for draft in drafts}
    resolved: list[tuple[str, ...]] = []
    for draft in drafts:
        names: list[str] = []
        for wanted in draft.depends_on:
            matches = [d.name for d in drafts if wanted in (d.name, d.alias)]
            if not matches and wanted in disabled:
                continue  # left out by its only_if: Cirrus drops the dependency
            if not matches:
                hint = (
                    f'task "{draft.name}" depends on task "{wanted}", whose name was replaced '
                    "by a name: field inside that task"
                    if wanted in fallbacks
                    else f'there\'s no task "{wanted}", but task "{draft.name}" depends on it'
                )
                raise CirrusConfigError(hint, draft.depends_at, draft.name, "depends_on")
            names.extend(name for name in matches if name not in names)
        resolved.append(tuple(names))
    return resolved


def _spec(
    draft: _Draft, index: int, total: int, depends_on: tuple[str, ...], context: BuildContext
) -> TaskSpec:
    automatic = {
        **STATIC_VARIABLES,
        **draft.automatic,
        "CIRRUS_TASK_NAME": draft.name,
        "CI_NODE_INDEX": str(index),
        "CI_NODE_TOTAL": str(total),
    }
    if draft.alias:
        automatic["CIRRUS_TASK_NAME_ALIAS"] = draft.alias
    if context.build_id:
        automatic["CIRRUS_BUILD_ID"] = context.build_id
    raw = {k: v for k, v in draft.raw_environment.items() if k not in draft.unset}
    own = expand_environment(raw, {**automatic, **context.environment}, keep_unknown=True)
    commands = list(draft.body.commands)
    if not any(command.name == CLONE for command in commands):
        commands.insert(0, Command(CLONE, CloneInstruction()))
    settings = draft.settings
    timeout = settings.get("timeout")
    return TaskSpec(
        name=draft.name,
        labels=draft.requirement.labels,
        isolation=draft.requirement.isolation,
        resources=draft.requirement.resources,
        environment={**automatic, **own},
        timeout_seconds=timeout if isinstance(timeout, int) else 3600,
        depends_on=depends_on,
        commands=tuple(commands),
        alias=draft.alias,
        allow_failures=bool(settings.get("allow_failures")),
        skip_reason=str(settings.get("skip_reason", "")),
        manual=bool(settings.get("manual")),
        auto_cancellation=bool(settings.get("auto_cancellation")),
        notices=tuple(_unset_notice(name) for name in draft.unset),
    )


def _unset_notice(name: str) -> str:
    return (
        f'"{name}" is not set: its ENCRYPTED[...] value was made by hosted Cirrus CI, which no '
        "controller can decrypt; encrypt the value again with `cirrus secret encrypt` and "
        "replace it in the configuration"
    )


def _last_key(pairs: Pairs, keys: frozenset[str]) -> str | None:
    found = None
    for key, _value in pairs.items:
        if key in keys:
            found = key
    return found


def _key_position(pairs: Pairs, key: str) -> Position:
    for index in range(len(pairs.items) - 1, -1, -1):
        if pairs.items[index][0] == key:
            return pairs.key_at(index)
    return pairs.at
