"""Proto3 JSON codec of the ``CirrusCIService`` messages (commands, results, logs).

Pure functions, no I/O. Instructions this worker has no class for (``waitForTerminalInstruction``,
or any unknown ``…Instruction`` object member of a ``Command``) become
``UnknownInstruction(<snake_case member name>)``; a command with no instruction gets
``UnknownInstruction("")``. Writing an ``UnknownInstruction`` emits its name as an empty member.
"""

from __future__ import annotations

from adapters.twirp.errors import ProtocolDecodeError, ProtocolEncodeError
from adapters.twirp.json_fields import (
    INT64,
    JsonReader,
    JsonWriter,
    as_reader,
    json_name,
    proto_name_of,
)
from adapters.twirp.messages import (
    AppendLogsRequest,
    InitialCommandsRequest,
    ReportAgentFinishedRequest,
    ReportCommandUpdatesRequest,
    UploadLogsResponse,
)
from domain.protocol import (
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    CacheInstruction,
    CloneInstruction,
    Command,
    CommandResult,
    CommandsResponse,
    CommandStatus,
    ExecutionBehaviour,
    ExitInstruction,
    FileInstruction,
    Instruction,
    ScriptInstruction,
    UnknownInstruction,
    UploadCacheInstruction,
    frozen_str_map,
)

JsonObject = dict[str, object]


def encode_initial_commands_request(value: InitialCommandsRequest) -> JsonObject:
    """Write an ``InitialCommandsRequest``."""
    return (
        JsonWriter()
        .int64("local_timestamp", value.local_timestamp)
        .string("continue_from_command", value.continue_from_command)
        .boolean("retry", value.retry)
        .build()
    )


def decode_initial_commands_request(body: object) -> InitialCommandsRequest:
    """Read an ``InitialCommandsRequest``."""
    reader = as_reader(body)
    return InitialCommandsRequest(
        local_timestamp=reader.integer("local_timestamp", INT64),
        continue_from_command=reader.string("continue_from_command"),
        retry=reader.boolean("retry"),
    )


def _encode_instruction(instruction: Instruction) -> tuple[str, JsonObject] | None:
    match instruction:
        case ScriptInstruction(scripts=scripts):
            return "script_instruction", JsonWriter().repeated("scripts", scripts).build()
        case BackgroundScriptInstruction(scripts=scripts):
            return "background_script_instruction", JsonWriter().repeated(
                "scripts", scripts
            ).build()
        case FileInstruction():
            return "file_instruction", _encode_file_instruction(instruction)
        case ExitInstruction():
            return "exit_instruction", {}
        case CacheInstruction():
            return "cache_instruction", _encode_cache_instruction(instruction)
        case UploadCacheInstruction(cache_name=cache_name):
            return "upload_cache_instruction", JsonWriter().string("cache_name", cache_name).build()
        case ArtifactsInstruction(paths=paths, type=kind, format=fmt):
            writer = JsonWriter().repeated("paths", paths).string("type", kind)
            return "artifacts_instruction", writer.string("format", fmt).build()
        case CloneInstruction():
            return "clone_instruction", {}
        case UnknownInstruction(name=name):
            return (name, {}) if name else None


def _encode_file_instruction(value: FileInstruction) -> JsonObject:
    if value.from_environment_variable is not None and value.from_contents is not None:
        raise ProtocolEncodeError(
            "fileInstruction", "fromEnvironmentVariable and fromContents are both set"
        )
    writer = JsonWriter().string("destination_path", value.destination_path)
    if value.from_environment_variable is not None:
        writer.put("from_environment_variable", value.from_environment_variable)
    if value.from_contents is not None:
        writer.put("from_contents", value.from_contents)
    return writer.build()


def _encode_cache_instruction(value: CacheInstruction) -> JsonObject:
    return (
        JsonWriter()
        .string("folder", value.folder)
        .repeated("folders", value.folders)
        .repeated("fingerprint_scripts", value.fingerprint_scripts)
        .string("fingerprint_key", value.fingerprint_key)
        .repeated("populate_scripts", value.populate_scripts)
        .boolean("reupload_on_changes", value.reupload_on_changes)
        .boolean("optimistically_restore_on_miss", value.optimistically_restore_on_miss)
        .build()
    )


def _decode_known_instruction(name: str, body: JsonReader) -> Instruction:
    match name:
        case "script_instruction":
            return ScriptInstruction(scripts=body.strings("scripts"))
        case "background_script_instruction":
            return BackgroundScriptInstruction(scripts=body.strings("scripts"))
        case "file_instruction":
            members = [m for m in ("from_environment_variable", "from_contents") if body.has(m)]
            if len(members) > 1:
                raise ProtocolDecodeError(body.path, "more than one source member")
            return FileInstruction(
                destination_path=body.string("destination_path"),
                from_environment_variable=body.optional_string("from_environment_variable"),
                from_contents=body.optional_string("from_contents"),
            )
        case "exit_instruction":
            return ExitInstruction()
        case "cache_instruction":
            return CacheInstruction(
                folder=body.string("folder"),
                folders=body.strings("folders"),
                fingerprint_scripts=body.strings("fingerprint_scripts"),
                fingerprint_key=body.string("fingerprint_key"),
                populate_scripts=body.strings("populate_scripts"),
                reupload_on_changes=body.boolean("reupload_on_changes"),
                optimistically_restore_on_miss=body.boolean("optimistically_restore_on_miss"),
            )
        case "upload_cache_instruction":
            return UploadCacheInstruction(cache_name=body.string("cache_name"))
        case "artifacts_instruction":
            return ArtifactsInstruction(
                paths=body.strings("paths"), type=body.string("type"), format=body.string("format")
            )
        case "clone_instruction":
            return CloneInstruction()
        case _:
            return UnknownInstruction(name=name)


_KNOWN_INSTRUCTIONS = (
    "exit_instruction",
    "script_instruction",
    "background_script_instruction",
    "cache_instruction",
    "upload_cache_instruction",
    "clone_instruction",
    "file_instruction",
    "artifacts_instruction",
    "wait_for_terminal_instruction",
)


def _decode_instruction(reader: JsonReader) -> Instruction:
    members = [name for name in _KNOWN_INSTRUCTIONS if reader.has(name)]
    # A member from a newer proto is an unknown field, but it still says which instruction the
    # command carries; keep its name so that the failure can say what was not implemented.
    spelled = {json_name(name) for name in _KNOWN_INSTRUCTIONS} | set(_KNOWN_INSTRUCTIONS)
    members += [
        proto_name_of(key)
        for key in reader.json_keys()
        if key not in spelled
        and key.endswith(("Instruction", "_instruction"))
        and isinstance(reader.raw(key), dict)
    ]
    if len(members) > 1:
        spelled_members = ", ".join(json_name(m) for m in members)
        raise ProtocolDecodeError(reader.path, f"more than one instruction: {spelled_members}")
    if not members:
        return UnknownInstruction()
    body = reader.message(members[0])
    assert body is not None  # listed above only when present
    return _decode_known_instruction(members[0], body)


def encode_command(value: Command) -> JsonObject:
    """Write a ``Command`` with its one instruction."""
    writer = JsonWriter().string("name", value.name)
    instruction = _encode_instruction(value.instruction)
    if instruction is not None:
        writer.put(*instruction)
    return writer.enum("execution_behaviour", value.execution_behaviour).build()


def decode_command(body: object, path: str = "") -> Command:
    """Read a ``Command``; no or an unknown instruction gives an ``UnknownInstruction``."""
    reader = as_reader(body, path)
    return Command(
        name=reader.string("name"),
        instruction=_decode_instruction(reader),
        execution_behaviour=reader.enum("execution_behaviour", ExecutionBehaviour),
    )


def encode_commands_response(value: CommandsResponse) -> JsonObject:
    """Write a ``CommandsResponse``."""
    return (
        JsonWriter()
        .string_map("environment", value.environment)
        .repeated("commands", [encode_command(c) for c in value.commands])
        .int64("timeout_in_seconds", value.timeout_in_seconds)
        .repeated("secrets_to_mask", value.secrets_to_mask)
        .build()
    )


def decode_commands_response(body: object) -> CommandsResponse:
    """Read a ``CommandsResponse``."""
    reader = as_reader(body)
    return CommandsResponse(
        environment=frozen_str_map(reader.string_map("environment")),
        commands=tuple(decode_command(c) for c in reader.messages("commands")),
        timeout_in_seconds=reader.integer("timeout_in_seconds", INT64),
        secrets_to_mask=reader.strings("secrets_to_mask"),
    )


def encode_command_result(value: CommandResult) -> JsonObject:
    """Write a ``CommandResult``."""
    return (
        JsonWriter()
        .string("name", value.name)
        .enum("status", value.status)
        .int64("duration_in_nanos", value.duration_in_nanos)
        .boolean("signaled_to_exit", value.signaled_to_exit)
        .build()
    )


def decode_command_result(body: object, path: str = "") -> CommandResult:
    """Read a ``CommandResult``."""
    reader = as_reader(body, path)
    return CommandResult(
        name=reader.string("name"),
        status=reader.enum("status", CommandStatus),
        duration_in_nanos=reader.integer("duration_in_nanos", INT64),
        signaled_to_exit=reader.boolean("signaled_to_exit"),
    )


def encode_report_command_updates_request(value: ReportCommandUpdatesRequest) -> JsonObject:
    """Write a ``ReportCommandUpdatesRequest``."""
    return (
        JsonWriter().repeated("updates", [encode_command_result(u) for u in value.updates]).build()
    )


def decode_report_command_updates_request(body: object) -> ReportCommandUpdatesRequest:
    """Read a ``ReportCommandUpdatesRequest``."""
    reader = as_reader(body)
    return ReportCommandUpdatesRequest(
        updates=tuple(decode_command_result(u) for u in reader.messages("updates"))
    )


def encode_append_logs_request(value: AppendLogsRequest) -> JsonObject:
    """Write an ``AppendLogsRequest`` (``data`` as base64)."""
    return JsonWriter().string("command_name", value.command_name).data("data", value.data).build()


def decode_append_logs_request(body: object) -> AppendLogsRequest:
    """Read an ``AppendLogsRequest``."""
    reader = as_reader(body)
    return AppendLogsRequest(command_name=reader.string("command_name"), data=reader.data("data"))


def encode_upload_logs_response(value: UploadLogsResponse) -> JsonObject:
    """Write an ``UploadLogsResponse``."""
    return JsonWriter().int64("bytes_logged", value.bytes_logged).build()


def decode_upload_logs_response(body: object) -> UploadLogsResponse:
    """Read an ``UploadLogsResponse``."""
    return UploadLogsResponse(bytes_logged=as_reader(body).integer("bytes_logged", INT64))


def encode_report_agent_finished_request(value: ReportAgentFinishedRequest) -> JsonObject:
    """Write a ``ReportAgentFinishedRequest``."""
    results = [encode_command_result(r) for r in value.command_results]
    return JsonWriter().repeated("command_results", results).build()


def decode_report_agent_finished_request(body: object) -> ReportAgentFinishedRequest:
    """Read a ``ReportAgentFinishedRequest``."""
    reader = as_reader(body)
    return ReportAgentFinishedRequest(
        command_results=tuple(decode_command_result(r) for r in reader.messages("command_results"))
    )
