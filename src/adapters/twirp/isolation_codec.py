"""Proto3 JSON mapping of the ``Isolation`` message and its oneof ``type``.

An absent isolation is ``none``; a present but empty one (``{}``) is an ``UnsetIsolation``; a
member is written even when it holds only defaults (``{"none": {}}``, ``{"tart": {}}``). Two
members at once is an error, as in any proto3 JSON reader.
"""

from __future__ import annotations

from adapters.twirp.errors import ProtocolDecodeError
from adapters.twirp.json_fields import UINT32, JsonReader, JsonWriter, as_reader, json_name
from domain.isolation import (
    ContainerIsolation,
    ContainerVolume,
    Isolation,
    NoneIsolation,
    ParallelsIsolation,
    Platform,
    TartIsolation,
    TartVolume,
    UnsetIsolation,
    VetuBridged,
    VetuHost,
    VetuIsolation,
    VetuNetworking,
)


def _single_member(reader: JsonReader, members: tuple[str, ...], what: str) -> str | None:
    present = [name for name in members if reader.has(name)]
    if len(present) > 1:
        spelled = ", ".join(json_name(name) for name in present)
        raise ProtocolDecodeError(reader.path or what, f"more than one {what} member: {spelled}")
    return present[0] if present else None


def encode_container_volume(volume: ContainerVolume) -> dict[str, object]:
    """Write a top-level ``Volume``."""
    return (
        JsonWriter()
        .string("source", volume.source)
        .string("target", volume.target)
        .boolean("read_only", volume.read_only)
        .build()
    )


def decode_container_volume(body: object, path: str = "") -> ContainerVolume:
    """Read a top-level ``Volume``."""
    reader = as_reader(body, path)
    return ContainerVolume(
        source=reader.string("source"),
        target=reader.string("target"),
        read_only=reader.boolean("read_only"),
    )


def encode_tart_volume(volume: TartVolume) -> dict[str, object]:
    """Write an ``Isolation.Tart.Volume``."""
    return (
        JsonWriter()
        .string("name", volume.name)
        .string("source", volume.source)
        .string("target", volume.target)
        .boolean("read_only", volume.read_only)
        .boolean("cleanup", volume.cleanup)
        .build()
    )


def decode_tart_volume(body: object, path: str = "") -> TartVolume:
    """Read an ``Isolation.Tart.Volume``."""
    reader = as_reader(body, path)
    return TartVolume(
        name=reader.string("name"),
        source=reader.string("source"),
        target=reader.string("target"),
        read_only=reader.boolean("read_only"),
        cleanup=reader.boolean("cleanup"),
    )


def _encode_container(value: ContainerIsolation) -> dict[str, object]:
    return (
        JsonWriter()
        .string("image", value.image)
        .floating("cpu", value.cpu)
        .int32("memory", value.memory)
        .repeated("volumes", [encode_container_volume(v) for v in value.volumes])
        .string("dockerfile", value.dockerfile)
        .string_map("docker_arguments", dict(value.docker_arguments))
        .enum("platform", value.platform)
        .build()
    )


def _decode_container(reader: JsonReader) -> ContainerIsolation:
    return ContainerIsolation(
        image=reader.string("image"),
        cpu=reader.floating("cpu"),
        memory=reader.integer("memory", UINT32),
        volumes=tuple(decode_container_volume(v) for v in reader.messages("volumes")),
        dockerfile=reader.string("dockerfile"),
        docker_arguments=tuple(reader.string_map("docker_arguments").items()),
        platform=reader.enum("platform", Platform),
    )


def _encode_tart(value: TartIsolation) -> dict[str, object]:
    return (
        JsonWriter()
        .string("image", value.image)
        .string("user", value.user)
        .string("password", value.password)
        .int32("cpu", value.cpu)
        .int32("memory", value.memory)
        .boolean("softnet", value.softnet)
        .boolean(
            "mount_temporary_working_directory_from_host",
            value.mount_temporary_working_directory_from_host,
        )
        .string("display", value.display)
        .repeated("volumes", [encode_tart_volume(v) for v in value.volumes])
        .int32("disk_size", value.disk_size)
        .int32("port", value.port)
        .boolean("sync_time_over_ssh", value.sync_time_over_ssh)
        .boolean("nested", value.nested)
        .build()
    )


def _decode_tart(reader: JsonReader) -> TartIsolation:
    return TartIsolation(
        image=reader.string("image"),
        user=reader.string("user"),
        password=reader.string("password"),
        cpu=reader.integer("cpu", UINT32),
        memory=reader.integer("memory", UINT32),
        softnet=reader.boolean("softnet"),
        mount_temporary_working_directory_from_host=reader.boolean(
            "mount_temporary_working_directory_from_host"
        ),
        display=reader.string("display"),
        volumes=tuple(decode_tart_volume(v) for v in reader.messages("volumes")),
        disk_size=reader.integer("disk_size", UINT32),
        port=reader.integer("port", UINT32),
        sync_time_over_ssh=reader.boolean("sync_time_over_ssh"),
        nested=reader.boolean("nested"),
    )


def _encode_vetu(value: VetuIsolation) -> dict[str, object]:
    writer = (
        JsonWriter()
        .string("image", value.image)
        .string("user", value.user)
        .string("password", value.password)
        .int32("cpu", value.cpu)
        .int32("memory", value.memory)
    )
    match value.networking:
        case VetuBridged(interface=interface):
            writer.put("bridged", JsonWriter().string("interface", interface).build())
        case VetuHost():
            writer.put("host", {})
        case None:
            pass
    return (
        writer.int32("disk_size", value.disk_size)
        .int32("port", value.port)
        .boolean("sync_time_over_ssh", value.sync_time_over_ssh)
        .boolean("standard_output_to_logs", value.standard_output_to_logs)
        .build()
    )


def _decode_vetu_networking(reader: JsonReader) -> VetuNetworking:
    member = _single_member(reader, ("bridged", "host"), "networking")
    if member == "bridged":
        bridged = reader.message("bridged")
        assert bridged is not None  # _single_member saw it present
        return VetuBridged(interface=bridged.string("interface"))
    if member == "host":
        reader.message("host")  # type-checks the member: it must be an object
        return VetuHost()
    return None


def _decode_vetu(reader: JsonReader) -> VetuIsolation:
    return VetuIsolation(
        image=reader.string("image"),
        user=reader.string("user"),
        password=reader.string("password"),
        cpu=reader.integer("cpu", UINT32),
        memory=reader.integer("memory", UINT32),
        networking=_decode_vetu_networking(reader),
        disk_size=reader.integer("disk_size", UINT32),
        port=reader.integer("port", UINT32),
        sync_time_over_ssh=reader.boolean("sync_time_over_ssh"),
        standard_output_to_logs=reader.boolean("standard_output_to_logs"),
    )


def _encode_parallels(value: ParallelsIsolation) -> dict[str, object]:
    return (
        JsonWriter()
        .string("image", value.image)
        .string("user", value.user)
        .string("password", value.password)
        .enum("platform", value.platform)
        .build()
    )


def _decode_parallels(reader: JsonReader) -> ParallelsIsolation:
    return ParallelsIsolation(
        image=reader.string("image"),
        user=reader.string("user"),
        password=reader.string("password"),
        platform=reader.enum("platform", Platform),
    )


def encode_isolation(isolation: Isolation) -> dict[str, object]:
    """Write an ``Isolation``: its one set member, or ``{}`` for an unset one."""
    match isolation:
        case NoneIsolation():
            return {"none": {}}
        case UnsetIsolation():
            return {}
        case ContainerIsolation():
            return {"container": _encode_container(isolation)}
        case TartIsolation():
            return {"tart": _encode_tart(isolation)}
        case VetuIsolation():
            return {"vetu": _encode_vetu(isolation)}
        case ParallelsIsolation():
            return {"parallels": _encode_parallels(isolation)}


def decode_isolation(body: object, path: str = "") -> Isolation:
    """Read a present ``Isolation`` message (``{}`` is an ``UnsetIsolation``)."""
    reader = as_reader(body, path)
    members = ("none", "parallels", "container", "tart", "vetu")
    member = _single_member(reader, members, "isolation")
    body = reader.message(member) if member else None
    if member is None or body is None:
        return UnsetIsolation()
    match member:
        case "none":
            return NoneIsolation()
        case "parallels":
            return _decode_parallels(body)
        case "container":
            return _decode_container(body)
        case "tart":
            return _decode_tart(body)
        case _:
            return _decode_vetu(body)


def decode_isolation_field(reader: JsonReader, proto_name: str) -> Isolation:
    """Read an ``Isolation`` field of a message: absent (or null) means ``none``."""
    field = reader.message(proto_name)
    return NoneIsolation() if field is None else decode_isolation(field)
