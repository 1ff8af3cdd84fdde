"""``CirrusCIService`` messages with a domain counterpart (commands, results, caches,
artifacts) <-> the generated wire model; the others are used as generated.

Instructions this worker has no class for (``waitForTerminalInstruction``, or a ``…Instruction``
object member of a ``Command`` that this proto does not know, from a newer controller) become
``UnknownInstruction(<snake_case member name>)``, so that the failure can say what was not
implemented; a command with no instruction gets ``UnknownInstruction("")``. The deprecated
``task_identification`` members are neither written nor read (headers identify the task).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from adapters.twirp.errors import ProtocolDecodeError, ProtocolEncodeError
from adapters.twirp.wire_json import (
    JsonObject,
    WireMapping,
    from_json,
    named,
    plain,
    same_names,
    to_json,
)
from adapters.wire import cirrus_ci_service_pb2 as wire
from adapters.wire import cirrus_worker_additions_pb2 as additions
from domain.protocol import (
    ArtifactFileInfo,
    ArtifactsCommit,
    ArtifactsInstruction,
    ArtifactUploadRequest,
    ArtifactUploadUrls,
    BackgroundScriptInstruction,
    CacheInfo,
    CacheInfoRequest,
    CacheInfoResponse,
    CacheInstruction,
    CacheKey,
    CloneInstruction,
    Command,
    CommandResult,
    CommandsResponse,
    CommandStatus,
    DownloadUrls,
    ExecutionBehaviour,
    ExitInstruction,
    FileInstruction,
    Instruction,
    ScriptInstruction,
    UnknownInstruction,
    UploadCacheInstruction,
    UploadUrl,
    frozen_str_map,
)

_CACHE = (
    "folder folders fingerprint_scripts fingerprint_key populate_scripts reupload_on_changes"
    " optimistically_restore_on_miss"
)
_RESULT = "name duration_in_nanos signaled_to_exit"
_CACHE_INFO = "key size_in_bytes creation_timestamp created_by_task_id"
_INSTRUCTIONS = wire.Command.DESCRIPTOR.oneofs_by_name["instruction"].fields
_SPELLED = {f.name for f in _INSTRUCTIONS} | {f.json_name for f in _INSTRUCTIONS}


def _instruction_member(instruction: Instruction) -> tuple[str, Any] | None:
    match instruction:
        case ScriptInstruction(scripts=scripts):
            return "script_instruction", wire.ScriptInstruction(scripts=scripts)
        case BackgroundScriptInstruction(scripts=scripts):
            return "background_script_instruction", wire.BackgroundScriptInstruction(
                scripts=scripts
            )
        case FileInstruction():
            return "file_instruction", _file_instruction(instruction)
        case ExitInstruction():
            return "exit_instruction", wire.ExitInstruction()
        case CacheInstruction():
            return "cache_instruction", wire.CacheInstruction(**named(instruction, _CACHE))
        case UploadCacheInstruction(cache_name=name):
            return "upload_cache_instruction", wire.UploadCacheInstruction(cache_name=name)
        case ArtifactsInstruction(paths=paths, type=kind, format=fmt):
            instruction_message = wire.ArtifactsInstruction(paths=paths, type=kind, format=fmt)
            return "artifacts_instruction", instruction_message
        case CloneInstruction():
            return "clone_instruction", wire.CloneInstruction()
        case UnknownInstruction(name=name):
            # Only a member this proto knows can be written; an unknown one has no field.
            return (name, {}) if name in {f.name for f in _INSTRUCTIONS} else None


def _file_instruction(value: FileInstruction) -> wire.FileInstruction:
    if value.from_environment_variable is not None and value.from_contents is not None:
        raise ProtocolEncodeError(
            "fileInstruction", "fromEnvironmentVariable and fromContents are both set"
        )
    message = wire.FileInstruction(destination_path=value.destination_path)
    if value.from_environment_variable is not None:
        message.from_environment_variable = value.from_environment_variable
    if value.from_contents is not None:
        message.from_contents = value.from_contents
    return message


def command_to_proto(value: Command) -> wire.Command:
    """Map a ``Command`` with its one instruction to its message."""
    member = _instruction_member(value.instruction)
    return wire.Command(
        name=value.name,
        execution_behaviour=wire.Command.CommandExecutionBehavior.ValueType(
            value.execution_behaviour
        ),
        **dict([member] if member else []),
    )


def _instruction_from(message: wire.Command, unknown: str) -> Instruction:
    match message.WhichOneof("instruction"):
        case "script_instruction":
            return ScriptInstruction(tuple(message.script_instruction.scripts))
        case "background_script_instruction":
            return BackgroundScriptInstruction(tuple(message.background_script_instruction.scripts))
        case "file_instruction":
            file = message.file_instruction
            source = file.WhichOneof("source")
            return FileInstruction(
                destination_path=file.destination_path,
                from_environment_variable=file.from_environment_variable
                if source == "from_environment_variable"
                else None,
                from_contents=file.from_contents if source == "from_contents" else None,
            )
        case "exit_instruction":
            return ExitInstruction()
        case "cache_instruction":
            return CacheInstruction(**plain(message.cache_instruction, _CACHE))
        case "upload_cache_instruction":
            return UploadCacheInstruction(message.upload_cache_instruction.cache_name)
        case "artifacts_instruction":
            return ArtifactsInstruction(**plain(message.artifacts_instruction, "paths type format"))
        case "clone_instruction":
            return CloneInstruction()
        case None:
            return UnknownInstruction(unknown)
        case other:
            return UnknownInstruction(other)


def _unknown_instruction(body: object, path: str) -> str:
    """The snake_case name of the instruction member of a JSON ``Command`` that this proto does
    not know (``""`` if none); ``ProtocolDecodeError`` if it comes with another member."""
    if not isinstance(body, dict):
        return ""
    unknown = [
        key
        for key, value in body.items()
        if key not in _SPELLED
        and key.endswith(("Instruction", "_instruction"))
        and isinstance(value, dict)
    ]
    known = [key for key in body if key in _SPELLED and body[key] is not None]
    if len(unknown) + len(known) > 1 and unknown:
        spelled = ", ".join(known + unknown)
        raise ProtocolDecodeError(path, f"more than one instruction: {spelled}")
    return (
        re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), unknown[0]) if unknown else ""
    )


def command_from_proto(message: wire.Command, unknown: str = "") -> Command:
    """Map a ``Command`` message to the domain (``unknown``: see ``_unknown_instruction``)."""
    return Command(
        name=message.name,
        instruction=_instruction_from(message, unknown),
        execution_behaviour=ExecutionBehaviour(message.execution_behaviour),
    )


def encode_command(value: Command) -> JsonObject:
    """Write a ``Command`` with its one instruction."""
    return to_json(command_to_proto(value))


def decode_command(body: object, path: str = "") -> Command:
    """Read a ``Command``; no or an unknown instruction gives an ``UnknownInstruction``."""
    unknown = _unknown_instruction(body, path)
    return command_from_proto(from_json(body, wire.Command, path), unknown)


def _commands_response(value: CommandsResponse) -> wire.CommandsResponse:
    return wire.CommandsResponse(
        environment=dict(value.environment),
        commands=[command_to_proto(c) for c in value.commands],
        timeout_in_seconds=value.timeout_in_seconds,
        secrets_to_mask=value.secrets_to_mask,
    )


def _commands_from(message: wire.CommandsResponse, unknown: Sequence[str] = ()) -> CommandsResponse:
    return CommandsResponse(
        environment=frozen_str_map(message.environment),
        commands=tuple(
            command_from_proto(c, unknown[i] if unknown else "")
            for i, c in enumerate(message.commands)
        ),
        timeout_in_seconds=message.timeout_in_seconds,
        secrets_to_mask=tuple(message.secrets_to_mask),
    )


def _commands_from_json(body: object) -> CommandsResponse:
    message = from_json(body, wire.CommandsResponse)
    raw = body.get("commands") if isinstance(body, dict) else None
    return _commands_from(
        message, [_unknown_instruction(c, f"commands[{i}]") for i, c in enumerate(raw or [])]
    )


def result_to_proto(value: CommandResult) -> wire.CommandResult:
    """Map a ``CommandResult`` to its message."""
    return wire.CommandResult(
        name=value.name,
        status=wire.Status.ValueType(value.status),
        duration_in_nanos=value.duration_in_nanos,
        signaled_to_exit=value.signaled_to_exit,
    )


def result_from_proto(message: wire.CommandResult) -> CommandResult:
    """Map a ``CommandResult`` message to the domain."""
    return CommandResult(**plain(message, _RESULT), status=CommandStatus(message.status))


def _checked_offset(message: additions.AppendLogsRequest) -> additions.AppendLogsRequest:
    if message.HasField("offset") and message.offset < 0:
        raise ProtocolDecodeError("offset", f"integer {message.offset} is negative")
    return message


def _files(files: tuple[ArtifactFileInfo, ...]) -> list[wire.ArtifactFileInfo]:
    return [wire.ArtifactFileInfo(path=f.path, size_in_bytes=f.size_in_bytes) for f in files]


def _files_from(files: Any) -> tuple[ArtifactFileInfo, ...]:
    return tuple(ArtifactFileInfo(f.path, f.size_in_bytes) for f in files)


def _cache_info(value: CacheInfoResponse) -> wire.CacheInfoResponse:
    return wire.CacheInfoResponse(info=wire.CacheInfo(**named(value.info, _CACHE_INFO)))


def _upload_url(value: UploadUrl) -> wire.GenerateURLResponse:
    return wire.GenerateURLResponse(url=value.url, extra_headers=dict(value.headers))


def _artifact_upload(value: ArtifactUploadRequest) -> wire.GenerateArtifactUploadURLsRequest:
    return wire.GenerateArtifactUploadURLsRequest(name=value.name, files=_files(value.files))


def _artifact_urls(value: ArtifactUploadUrls) -> wire.GenerateArtifactUploadURLsResponse:
    url = wire.GenerateArtifactUploadURLsResponse.UploadURL
    return wire.GenerateArtifactUploadURLsResponse(
        urls=[url(url=u.url, headers=dict(u.headers)) for u in value.urls]
    )


def _commit(value: ArtifactsCommit) -> wire.CommitUploadedArtifactsRequest:
    return wire.CommitUploadedArtifactsRequest(
        name=value.name, type=value.type, format=value.format, files=_files(value.files)
    )


MAPPINGS: tuple[WireMapping[Any], ...] = (
    WireMapping(Command, wire.Command, command_to_proto, command_from_proto, decode_command),
    WireMapping(
        CommandsResponse,
        wire.CommandsResponse,
        _commands_response,
        _commands_from,
        _commands_from_json,
    ),
    WireMapping(CommandResult, wire.CommandResult, result_to_proto, result_from_proto),
    # A generated message of its own, checked on reading (an offset is never negative).
    WireMapping(
        additions.AppendLogsRequest, additions.AppendLogsRequest, lambda m: m, _checked_offset
    ),
    same_names(CacheKey, wire.CacheKey),
    same_names(CacheInfoRequest, wire.CacheInfoRequest),
    same_names(DownloadUrls, wire.GenerateURLsResponse),
    WireMapping(
        CacheInfoResponse,
        wire.CacheInfoResponse,
        _cache_info,
        lambda m: CacheInfoResponse(CacheInfo(**plain(m.info, _CACHE_INFO))),
    ),
    WireMapping(
        UploadUrl,
        wire.GenerateURLResponse,
        _upload_url,
        lambda m: UploadUrl(m.url, frozen_str_map(m.extra_headers)),
    ),
    WireMapping(
        ArtifactUploadRequest,
        wire.GenerateArtifactUploadURLsRequest,
        _artifact_upload,
        lambda m: ArtifactUploadRequest(m.name, _files_from(m.files)),
    ),
    WireMapping(
        ArtifactUploadUrls,
        wire.GenerateArtifactUploadURLsResponse,
        _artifact_urls,
        lambda m: ArtifactUploadUrls(
            tuple(UploadUrl(u.url, frozen_str_map(u.headers)) for u in m.urls)
        ),
    ),
    WireMapping(
        ArtifactsCommit,
        wire.CommitUploadedArtifactsRequest,
        _commit,
        lambda m: ArtifactsCommit(m.name, m.type, m.format, _files_from(m.files)),
    ),
)
