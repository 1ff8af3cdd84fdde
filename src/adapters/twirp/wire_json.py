"""Twirp JSON of the generated wire model: protobuf's ``json_format`` (the proto3 JSON mapping:
lowerCamelCase names, 64-bit integers as strings, enums by name, base64 bytes, defaults omitted)
plus ``WireMapping``, how a domain type maps to its message.

Reading accepts what the proto3 JSON mapping allows (either field spelling, numbers or strings
for 64-bit integers, enum names or numbers, standard or URL-safe base64) and ignores unknown
fields, as a reader of a newer controller's or worker's messages must.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.message import Message

from adapters.twirp.errors import ProtocolDecodeError

M = TypeVar("M", bound=Message)
T = TypeVar("T")
JsonObject = dict[str, object]


def to_json(message: Message) -> JsonObject:
    """Write a message as a JSON object."""
    return json_format.MessageToDict(message)


def from_json(body: object, message_type: type[M], path: str = "") -> M:
    """Read a JSON object as a message of ``message_type`` (``ProtocolDecodeError`` if not)."""
    if not isinstance(body, dict):
        kind = "null" if body is None else type(body).__name__
        raise ProtocolDecodeError(path or "message", f"expected an object, got {kind}")
    message = message_type()
    _check_objects(body, message.DESCRIPTOR, path)
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise ProtocolDecodeError(path, str(error)) from None
    return message


def _check_objects(body: dict[str, object], descriptor: Any, path: str) -> None:
    """Refuse a non-object where a message is due: with unknown fields ignored, ``json_format``
    would read a string or a list there as an empty message. Also let the largest ``float``
    through: its shortest form is rounded up past it (see ``_largest_float``)."""
    for key, value in body.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is not None and field.type == field.TYPE_FLOAT:
            body[key] = (
                [_largest_float(v) for v in value]
                if isinstance(value, list)
                else (_largest_float(value))
            )
        if field is None or field.message_type is None or field.message_type.GetOptions().map_entry:
            continue  # not a message field: json_format checks it
        if field.is_repeated and not isinstance(value, list):
            continue  # json_format refuses it
        where = f"{path}.{key}" if path else key
        items = value if isinstance(value, list) and field.is_repeated else [value]
        for index, item in enumerate(items):
            item_path = f"{where}[{index}]" if field.is_repeated else where
            if item is None and not field.is_repeated:
                continue  # null: the field is absent
            if not isinstance(item, dict):
                raise ProtocolDecodeError(
                    item_path, f"expected an object, got {type(item).__name__}"
                )
            _check_objects(item, field.message_type, item_path)


_FLOAT32_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]


def _largest_float(value: object) -> object:
    """Return the largest ``float`` itself for a value that is its shortest decimal.

    ``3.4028235e+38`` is how protobuf (Python and Go alike) writes the largest 32-bit float,
    but as a double it lies just above it, and ``json_format`` refuses it as too large.
    """
    if isinstance(value, float) and _FLOAT32_MAX < abs(value) <= 3.4028235e38:
        return _FLOAT32_MAX if value > 0 else -_FLOAT32_MAX
    return value


@dataclass(frozen=True, slots=True)
class WireMapping(Generic[T]):
    """How values of one domain type become a generated message and back (``codec``'s registry
    looks it up by domain type)."""

    domain: type[T]
    message: type[Message]
    to_proto: Callable[[T], Message]
    from_proto: Callable[[Any], T]
    # Reading a few messages needs the JSON itself (an instruction this proto does not know).
    from_json: Callable[[object], T] | None = None


def same_names(domain: type[T], message: type[Message]) -> WireMapping[T]:
    """Return the mapping of a domain dataclass whose fields are the message's scalar (or
    repeated scalar) fields of the same names."""
    names = " ".join(field.name for field in dataclasses.fields(cast(Any, domain)))

    def to_proto(value: T) -> Message:
        return message(**named(value, names))

    return WireMapping(domain, message, to_proto, lambda m: domain(**plain(m, names)))


def named(value: object, names: str) -> dict[str, Any]:
    """Return the named attributes of a domain value as keyword arguments of its message."""
    return {name: getattr(value, name) for name in names.split()}


def plain(message: Message, names: str) -> dict[str, Any]:
    """Return the named scalar and repeated-scalar fields of a message as keyword arguments of
    the domain value with the same field names (repeated fields as tuples)."""
    fields = message.DESCRIPTOR.fields_by_name
    values: dict[str, Any] = {}
    for name in names.split():
        value = getattr(message, name)
        if fields[name].is_repeated:
            value = tuple(value)
        elif fields[name].type == fields[name].TYPE_FLOAT:
            value = shortest_float32(value)
        values[name] = value
    return values


def shortest_float32(value: float) -> float:
    """Return the shortest decimal that a ``float`` field holds (0.1, not 0.10000000149...)."""
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if struct.pack("<f", candidate) == packed:
                return candidate
        except OverflowError:
            # Near the largest float (3.4028235e38), a short decimal can round past it.
            continue
    return value
