"""Turning a ``.cirrus.yml`` tree into a validated ``BuildSpec`` (the subset in PROTOCOL.md)."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.cirrus_yaml.tree import Node, Pairs, YamlList, YamlStructureError, load_tree
from adapters.cirrus_yaml.values import (
    Where,
    check_keys,
    read_duration_seconds,
    read_pairs,
    read_string,
    read_string_map,
    read_strings,
)
from adapters.cirrus_yaml.worker import WorkerRequirements, read_persistent_worker
from domain.build import (
    DEFAULT_TIMEOUT_SECONDS,
    TOP_LEVEL,
    BuildConfigError,
    BuildSpec,
    TaskSpec,
    validate_build,
)
from domain.protocol import (
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    Command,
    ExecutionBehaviour,
    FileInstruction,
    Instruction,
    ScriptInstruction,
)

_ENV_KEYS = ("env", "environment")
_TASK_SUFFIX = "_task"
_DEFAULT_NAME = "main"
_BLOCKS = {"on_failure": ExecutionBehaviour.ON_FAILURE, "always": ExecutionBehaviour.ALWAYS}
# Longest suffix first: ``x_background_script`` also ends with ``_script``.
_INSTRUCTION_SUFFIXES = ("background_script", "script", "artifacts", "file")


def parse_build(text: str, environment: Mapping[str, str] | None = None) -> BuildSpec:
    """Return the validated build of a ``.cirrus.yml`` text, or raise ``BuildConfigError``.

    ``environment`` is the environment the build was submitted with; it is kept on the
    ``BuildSpec`` (a task's own ``env`` overrides it, see ``BuildSpec.environment_for``).
    """
    try:
        root = load_tree(text)
    except YamlStructureError as error:
        raise BuildConfigError(TOP_LEVEL, "", str(error)) from error
    top = Where(TOP_LEVEL)
    if root is None:
        return validate_build(BuildSpec((), environment or {}))
    if not isinstance(root, Pairs):
        raise BuildConfigError(TOP_LEVEL, "", "the configuration must be a mapping")
    default_env: dict[str, str] = {}
    default_worker = WorkerRequirements()
    task_nodes: list[tuple[str, Node]] = []
    seen: set[str] = set()
    for key, value in root.items:
        if key == "task" or (key.endswith(_TASK_SUFFIX) and len(key) > len(_TASK_SUFFIX)):
            task_nodes.append((key, value))
            continue
        if key in seen:
            raise BuildConfigError(TOP_LEVEL, key, f'duplicate key "{key}"')
        seen.add(key)
        if key in _ENV_KEYS:
            default_env.update(read_string_map(value, top.at(key)))
        elif key == "persistent_worker":
            default_worker = read_persistent_worker(value, top.at(key))
        else:
            raise top.at(key).unknown()
    tasks = tuple(_task(key, value, default_env, default_worker) for key, value in task_nodes)
    return validate_build(BuildSpec(tasks, environment or {}))


def _task(
    key: str, node: Node, default_env: Mapping[str, str], default_worker: WorkerRequirements
) -> TaskSpec:
    name = _DEFAULT_NAME if key == "task" else key.removesuffix(_TASK_SUFFIX)
    pairs = read_pairs(node, Where(name, key))
    fields = dict(pairs.items)
    if "name" in fields:
        name = read_string(fields["name"], Where(name, "name"))
    where = Where(name)
    environment = dict(default_env)
    worker = default_worker
    timeout = DEFAULT_TIMEOUT_SECONDS
    depends_on: tuple[str, ...] = ()
    commands: list[Command] = []
    for field_key, value in pairs.items:
        at = where.at(field_key)
        if field_key == "name":
            continue
        if field_key in _ENV_KEYS:
            environment.update(read_string_map(value, at))
        elif field_key == "persistent_worker":
            worker = read_persistent_worker(value, at)
        elif field_key == "timeout_in":
            timeout = read_duration_seconds(value, at)
            if timeout <= 0:
                raise at.fail("must be longer than 0s")
        elif field_key == "depends_on":
            empty = isinstance(value, YamlList) and not value.items
            depends_on = () if empty else read_strings(value, at)
        elif field_key in _BLOCKS:
            commands.extend(_block(value, at, _BLOCKS[field_key]))
        else:
            command = _command(field_key, value, at, ExecutionBehaviour.ON_SUCCESS)
            if command is None:
                raise at.unknown()
            commands.append(command)
    return TaskSpec(
        name=name,
        labels=worker.labels,
        isolation=worker.isolation,
        resources=worker.resources,
        environment=environment,
        timeout_seconds=timeout,
        depends_on=depends_on,
        commands=tuple(commands),
    )


def _block(node: Node, where: Where, behaviour: ExecutionBehaviour) -> list[Command]:
    commands = []
    for key, value in read_pairs(node, where).items:
        command = _command(key, value, where.at(key), behaviour)
        if command is None:
            raise where.at(key).unknown()
        commands.append(command)
    return commands


def _command(key: str, node: Node, where: Where, behaviour: ExecutionBehaviour) -> Command | None:
    """Return the command a ``[<name>_]script``/``background_script``/``file``/``artifacts`` key
    describes, or None if the key is none of those."""
    for suffix in _INSTRUCTION_SUFFIXES:
        if key == suffix:
            name = _DEFAULT_NAME
        elif key.endswith(f"_{suffix}") and len(key) > len(suffix) + 1:
            name = key.removesuffix(f"_{suffix}")
        else:
            continue
        return Command(name, _instruction(suffix, node, where), behaviour)
    return None


def _instruction(kind: str, node: Node, where: Where) -> Instruction:
    if kind == "script":
        return ScriptInstruction(read_strings(node, where))
    if kind == "background_script":
        return BackgroundScriptInstruction(read_strings(node, where))
    if kind == "file":
        return _file(node, where)
    return _artifacts(node, where)


def _file(node: Node, where: Where) -> FileInstruction:
    pairs = read_pairs(node, where)
    check_keys(pairs, where, frozenset({"path", "from_contents", "variable_name"}))
    fields = dict(pairs.items)
    if "path" not in fields:
        raise where.at("path").fail("is required")
    sources = [key for key in ("from_contents", "variable_name") if key in fields]
    if len(sources) != 1:
        raise where.fail("must have exactly one of from_contents or variable_name")
    source = sources[0]
    value = read_string(fields[source], where.at(source))
    return FileInstruction(
        destination_path=read_string(fields["path"], where.at("path")),
        from_environment_variable=value if source == "variable_name" else None,
        from_contents=value if source == "from_contents" else None,
    )


def _artifacts(node: Node, where: Where) -> ArtifactsInstruction:
    pairs = read_pairs(node, where)
    check_keys(pairs, where, frozenset({"path", "paths"}))
    fields = dict(pairs.items)
    if len(fields) != 1:
        raise where.fail("must have exactly one of path or paths")
    if "path" in fields:
        return ArtifactsInstruction(paths=(read_string(fields["path"], where.at("path")),))
    paths_node = fields["paths"]
    if not isinstance(paths_node, YamlList):
        raise where.at("paths").fail("must be a list")
    return ArtifactsInstruction(paths=read_strings(paths_node, where.at("paths")))
