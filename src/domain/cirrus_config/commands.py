"""A task's instructions (``*_script``, ``*_cache``, ``on_failure:`` ...) as wire ``Command``s.

Names and order follow the original parser (``pkg/parser/task`` of cirrus-cli): a key is an
instruction when it *ends* with ``script``, ``background_script``, ``cache``, ``artifacts`` or
``file`` (``build_script`` is command ``build``; a bare ``script`` is ``main``, a bare
``artifacts`` is ``binary``, a bare ``file`` is ``file``); ``upload_caches`` and the blocks
``on_success``/``on_failure``/``always``/``on_timeout`` are exact names. A repeated instruction
key counts once, where it last appears (the YAML map keeps the last value); repeated blocks and
``upload_caches`` stack. Keys that are no instruction are left to the caller.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from domain.cirrus_config.conditions import evaluate
from domain.cirrus_config.expand import expand
from domain.cirrus_config.nodes import (
    NOWHERE,
    CirrusConfigError,
    Node,
    Pairs,
    Position,
    Scalar,
    scalar_text,
)
from domain.cirrus_config.nodes import (
    Sequence as NodeList,
)
from domain.protocol import (
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    CacheInstruction,
    Command,
    ExecutionBehaviour,
    FileInstruction,
    ScriptInstruction,
    UploadCacheInstruction,
)

BLOCKS: Mapping[str, ExecutionBehaviour] = {
    "on_success": ExecutionBehaviour.ON_SUCCESS,
    "on_failure": ExecutionBehaviour.ON_FAILURE,
    "always": ExecutionBehaviour.ALWAYS,
    "on_timeout": ExecutionBehaviour.ON_TIMEOUT,
}
"""The blocks whose instructions run with another execution behaviour."""

UPLOAD_CACHES = "upload_caches"
CLONE = "clone"

# Checked in this order, as the original does: ``x_background_script`` ends with ``script`` too.
_SUFFIXES = (
    ("background_script", "main"),
    ("script", "main"),
    ("cache", "main"),
    ("artifacts", "binary"),
    ("file", "file"),
)

Field: TypeAlias = tuple[str, Node, Position]


@dataclass(frozen=True, slots=True)
class Scope:
    """What reading instructions needs: the variables for expansion and where errors point."""

    environment: Mapping[str, str]
    task: str
    changed_files: tuple[str, ...] | None = None

    def fail(self, message: str, at: Position, key: str = "") -> CirrusConfigError:
        """Return the error ``message`` about this task at ``at``."""
        return CirrusConfigError(message, at, self.task, key)


def instruction_kind(key: str) -> str | None:
    """Return which instruction ``key`` declares (``script``, ``cache``, ``on_failure``...) or
    None when it declares none."""
    if key == UPLOAD_CACHES or key in BLOCKS:
        return key
    for suffix, _default in _SUFFIXES:
        if key.endswith(suffix):
            return suffix
    return None


def effective_fields(pairs: Pairs) -> list[Field]:
    """Return the instruction fields of ``pairs`` in order, a repeated instruction key counted
    once at its last place (blocks and ``upload_caches`` repeat)."""
    last: dict[str, int] = {}
    for index, (key, _value) in enumerate(pairs.items):
        last[key] = index
    fields: list[Field] = []
    for index, (key, value) in enumerate(pairs.items):
        kind = instruction_kind(key)
        if kind is None:
            continue
        repeatable = kind == UPLOAD_CACHES or kind in BLOCKS
        if repeatable or last[key] == index:
            fields.append((key, value, pairs.key_at(index)))
    return fields


def read_commands(
    fields: Sequence[Field],
    scope: Scope,
    previous: Sequence[Command] = (),
    behaviour: ExecutionBehaviour = ExecutionBehaviour.ON_SUCCESS,
    *,
    blocks: bool = True,
) -> list[Command]:
    """Return the commands of instruction ``fields`` (``previous``: commands already in the task,
    for ``upload_caches``); blocks are read unless ``blocks`` is False (inside a block)."""
    commands: list[Command] = []
    for key, value, at in fields:
        kind = instruction_kind(key)
        if kind in BLOCKS:
            if not blocks:
                continue  # the original has no blocks inside blocks: the key means nothing there
            inner = effective_fields(value) if isinstance(value, Pairs) else []
            commands.extend(
                read_commands(inner, scope, [*previous, *commands], BLOCKS[key], blocks=False)
            )
        elif kind == UPLOAD_CACHES:
            commands.extend(_upload_caches(value, at, scope, [*previous, *commands], behaviour))
        elif kind is not None:
            commands.append(_READERS[kind](_name(key, kind), value, at, scope, behaviour))
    return commands


def upload_cache_commands(commands: Sequence[Command]) -> list[Command]:
    """Return the automatic ``Upload '<name>' cache`` commands that close a task: one per cache,
    with the cache's behaviour, unless ``upload_caches`` already placed them."""
    if any(isinstance(command.instruction, UploadCacheInstruction) for command in commands):
        return []
    return [
        Command(
            f"Upload '{command.name}' cache",
            UploadCacheInstruction(command.name),
            command.execution_behaviour,
        )
        for command in commands
        if isinstance(command.instruction, CacheInstruction)
    ]


def script_lines(node: Node, at: Position, scope: Scope) -> tuple[str, ...]:
    """Return the lines of a script as Cirrus reads them: a scalar split at newlines; a list of
    scalars (nulls dropped), where a ``key: value`` item (an unquoted colon) is text again and a
    ``ps:`` item is a PowerShell command."""
    if isinstance(node, Scalar):
        return tuple(scalar_text(node).split("\n"))
    if isinstance(node, Pairs):
        raise scope.fail("expected a scalar value or a list with scalar values", node.at or at)
    lines: list[str] = []
    for item in node.items:
        if isinstance(item, Scalar):
            if item.value is not None:
                lines.extend(scalar_text(item).split("\n"))
        elif isinstance(item, Pairs):
            lines.extend(_map_item(item, at, scope))
    return tuple(lines)


def strings(node: Node, at: Position, scope: Scope) -> list[str]:
    """Return a scalar or a list of scalars as expanded strings; a value that expands to
    ``[a, b]`` is read as that list (the original's flow-list rule)."""
    if isinstance(node, Scalar):
        raw = [scalar_text(node)]
    elif isinstance(node, NodeList) and all(isinstance(item, Scalar) for item in node.items):
        raw = [scalar_text(item) for item in node.items if isinstance(item, Scalar)]
    else:
        raise scope.fail("expected a scalar value or a list with scalar values", _at(node, at))
    result: list[str] = []
    for text in raw:
        expanded = expand(text, scope.environment)
        if expanded != text and expanded.startswith("[") and expanded.endswith("]"):
            result.extend(part.strip() for part in expanded[1:-1].split(","))
        else:
            result.append(expanded)
    return result


def text(node: Node, at: Position, scope: Scope) -> str:
    """Return a scalar, expanded; anything else is refused."""
    if not isinstance(node, Scalar):
        raise scope.fail("not a scalar value", _at(node, at))
    return expand(scalar_text(node), scope.environment)


def condition(node: Node, at: Position, scope: Scope) -> bool:
    """Return a scalar evaluated as a Cirrus boolean expression (``true``, ``$A == 'b'``...)."""
    if not isinstance(node, Scalar):
        raise scope.fail("not a scalar value", _at(node, at))
    return evaluate(scalar_text(node), scope.environment, scope.changed_files, _at(node, at))


def _map_item(item: Pairs, at: Position, scope: Scope) -> list[str]:
    powershell = item.get("ps")
    if powershell is not None:
        code = text(powershell, at, scope) if isinstance(powershell, Scalar) else ""
        encoded = base64.b64encode(code.encode("utf-16-le")).decode("ascii")
        return [f"powershell.exe -OutputFormat Text -NoLogo -EncodedCommand {encoded}"]
    lines = []
    for index, (key, value) in enumerate(item.items):
        if not isinstance(value, Scalar):
            raise scope.fail("unsupported script syntax", _at(value, item.key_at(index)))
        # ``- echo "TODO: fix"`` unquoted is a map to YAML; Cirrus turned it back into text.
        lines.append(f"{key}: {scalar_text(value)}")
    return lines


def _name(key: str, kind: str) -> str:
    default = dict(_SUFFIXES)[kind]
    prefix = key.removesuffix(kind)
    return prefix.removesuffix("_") if prefix else default


def _script(
    name: str, node: Node, at: Position, scope: Scope, behaviour: ExecutionBehaviour
) -> Command:
    return Command(name, ScriptInstruction(script_lines(node, at, scope)), behaviour)


def _background(
    name: str, node: Node, at: Position, scope: Scope, behaviour: ExecutionBehaviour
) -> Command:
    return Command(name, BackgroundScriptInstruction(script_lines(node, at, scope)), behaviour)


def _cache(
    name: str, node: Node, at: Position, scope: Scope, behaviour: ExecutionBehaviour
) -> Command:
    fields = _fields(node)
    name = _text_field(fields, "name", scope) or name
    folder = _text_field(fields, "folder", scope)
    folders = strings(*fields["folders"], scope) if "folders" in fields else []
    if not folder and not folders:
        raise scope.fail(
            "please specify the folders to cache, with either folder: or folders:", _at(node, at)
        )
    if folder and folders:
        raise scope.fail(
            "please specify either folder: or folders: but not both, to avoid ambiguity",
            _at(node, at),
        )
    fingerprint_scripts = (
        script_lines(*fields["fingerprint_script"], scope) if "fingerprint_script" in fields else ()
    )
    fingerprint_key = _text_field(fields, "fingerprint_key", scope)
    if fingerprint_scripts and fingerprint_key:
        raise scope.fail(
            "please either use fingerprint_script: or fingerprint_key, since otherwise there's "
            "ambiguity about which one to prefer for cache key calculation",
            _at(node, at),
        )
    # With a fingerprint Cirrus knows when the cache changed, so it stops re-uploading by default.
    reupload = not (fingerprint_scripts or fingerprint_key)
    if "reupload_on_changes" in fields:
        reupload = condition(*fields["reupload_on_changes"], scope)
    optimistic = "optimistically_restore_on_miss" in fields and condition(
        *fields["optimistically_restore_on_miss"], scope
    )
    paths = tuple(_home(path) for path in ([folder] if folder else folders))
    instruction = CacheInstruction(
        folder=paths[0] if len(paths) == 1 else "",
        folders=paths,
        fingerprint_scripts=fingerprint_scripts,
        fingerprint_key=fingerprint_key,
        populate_scripts=(
            script_lines(*fields["populate_script"], scope) if "populate_script" in fields else ()
        ),
        reupload_on_changes=reupload,
        optimistically_restore_on_miss=optimistic,
    )
    return Command(name, instruction, behaviour)


def _artifacts(
    name: str, node: Node, at: Position, scope: Scope, behaviour: ExecutionBehaviour
) -> Command:
    fields = _fields(node)
    name = _text_field(fields, "name", scope) or name
    paths: list[str] = []
    for key, value, field_at in _ordered(node):
        if key == "paths":
            paths = strings(value, field_at, scope)
        elif key == "path":
            paths = [text(value, field_at, scope)]
    instruction = ArtifactsInstruction(
        paths=tuple(paths),
        type=_text_field(fields, "type", scope),
        format=_text_field(fields, "format", scope),
    )
    return Command(name, instruction, behaviour)


def _file(
    name: str, node: Node, at: Position, scope: Scope, behaviour: ExecutionBehaviour
) -> Command:
    fields = _fields(node)
    name = _text_field(fields, "name", scope) or name
    if "path" not in fields:
        raise scope.fail('required field "path" was not set', _at(node, at), "path")
    variable: str | None = None
    contents: str | None = None
    for key, value, field_at in _ordered(node):
        if key == "variable_name":
            if not isinstance(value, Scalar):
                raise scope.fail("not a scalar value", _at(value, field_at), key)
            variable, contents = scalar_text(value).removeprefix("$"), None
        elif key == "from_contents":
            variable, contents = None, text(value, field_at, scope)
    if variable is None and contents is None:
        raise scope.fail(
            'either "variable_name" or "from_contents" field should be set', _at(node, at)
        )
    instruction = FileInstruction(
        destination_path=text(*fields["path"], scope),
        from_environment_variable=variable,
        from_contents=contents,
    )
    return Command(name, instruction, behaviour)


def _upload_caches(
    node: Node,
    at: Position,
    scope: Scope,
    previous: Sequence[Command],
    behaviour: ExecutionBehaviour,
) -> list[Command]:
    names = {command.name for command in previous}
    commands: list[Command] = []
    for cache in strings(node, at, scope):
        upload = f"Upload '{cache}' cache"
        if cache not in names:
            raise scope.fail(f'no cache with name "{cache}" is defined', _at(node, at))
        if upload in names or any(command.name == upload for command in commands):
            raise scope.fail(
                f'the cache with name "{upload}" is already scheduled to be uploaded in one of '
                "the previous upload_caches instructions",
                _at(node, at),
            )
        commands.append(Command(upload, UploadCacheInstruction(cache), behaviour))
    return commands


_Reader = Callable[[str, Node, Position, Scope, ExecutionBehaviour], Command]
_READERS: Mapping[str, _Reader] = {
    "script": _script,
    "background_script": _background,
    "cache": _cache,
    "artifacts": _artifacts,
    "file": _file,
}


def _fields(node: Node) -> dict[str, tuple[Node, Position]]:
    """Return the fields of an instruction's map (last value of a repeated key), {} otherwise:
    the original reads a non-map instruction as one without fields."""
    return {key: (value, at) for key, value, at in _ordered(node)}


def _text_field(fields: Mapping[str, tuple[Node, Position]], key: str, scope: Scope) -> str:
    """The text of an optional field ("" when it is absent)."""
    return text(*fields[key], scope) if key in fields else ""


def _ordered(node: Node) -> list[Field]:
    if not isinstance(node, Pairs):
        return []
    return [(key, value, node.key_at(index)) for index, (key, value) in enumerate(node.items)]


def _home(folder: str) -> str:
    # The agent does not expand ``~``; the original rewrote it (cirrus-ci-agent issue 47).
    folder = folder.strip()
    return "$HOME/" + folder[2:] if folder.startswith("~/") else folder


def _at(node: Node, fallback: Position) -> Position:
    return node.at if node.at != NOWHERE else fallback
