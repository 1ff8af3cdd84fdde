"""Proto3 JSON mapping primitives: typed reads from parsed JSON objects, canonical writes.

Readers accept a field under its lowerCamelCase JSON name or its proto (snake_case) name, treat
``null`` and absence as the default, read 64-bit integers from strings or numbers, enums from
name or number, ``bytes`` from standard or URL-safe base64 with or without padding, and raise
``ProtocolDecodeError`` naming the field path for a wrong JSON type. Writers emit lowerCamelCase
names, omit default values, write 64-bit integers as strings and enums as names.
"""

from __future__ import annotations

import base64
import binascii
import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from adapters.twirp.errors import ProtocolDecodeError

E = TypeVar("E", bound=enum.IntEnum)
T = TypeVar("T")

INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)

_DECIMAL = re.compile(r"[+-]?[0-9]+")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def json_name(proto_name: str) -> str:
    """Return the proto3 JSON name of a field: ``resources_in_use`` -> ``resourcesInUse``."""
    head, *rest = proto_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def proto_name_of(json_key: str) -> str:
    """Return the snake_case form of a lowerCamelCase key: ``fooBar`` -> ``foo_bar``."""
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), json_key)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong_type(path: str, expected: str, value: object) -> ProtocolDecodeError:
    return ProtocolDecodeError(path, f"expected {expected}, got {_type_name(value)}")


def read_string(value: object, path: str) -> str:
    """Read a proto ``string``."""
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    return value


def read_bool(value: object, path: str) -> bool:
    """Read a proto ``bool`` (only JSON ``true``/``false``)."""
    if not isinstance(value, bool):
        raise _wrong_type(path, "a boolean", value)
    return value


def read_int(value: object, path: str, bounds: tuple[int, int]) -> int:
    """Read an integer of any proto width from a JSON number or a decimal string."""
    if isinstance(value, bool):
        raise _wrong_type(path, "an integer", value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ProtocolDecodeError(path, f"expected an integer, got {value!r}")
        number = int(value)
    elif isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ProtocolDecodeError(path, f"expected an integer, got {value!r}")
        number = int(value)
    else:
        raise _wrong_type(path, "an integer", value)
    low, high = bounds
    if not low <= number <= high:
        raise ProtocolDecodeError(path, f"integer {number} out of range [{low}, {high}]")
    return number


def read_float(value: object, path: str) -> float:
    """Read a ``float``/``double`` from a number, a numeric string, ``NaN`` or ``±Infinity``."""
    if isinstance(value, bool):
        raise _wrong_type(path, "a number", value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        try:
            number = float(value)
        except ValueError:
            raise ProtocolDecodeError(path, f"expected a number, got {value!r}") from None
        if math.isfinite(number):
            return number
        raise ProtocolDecodeError(path, f"expected a number, got {value!r}")
    raise _wrong_type(path, "a number", value)


def read_enum(value: object, path: str, enum_type: type[E]) -> E:
    """Read an enum from its name or its number."""
    if isinstance(value, str):
        try:
            return enum_type[value]
        except KeyError:
            raise ProtocolDecodeError(
                path, f"unknown {enum_type.__name__} value {value!r}"
            ) from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return enum_type(value)
        except ValueError:
            raise ProtocolDecodeError(
                path, f"unknown {enum_type.__name__} number {value}"
            ) from None
    raise _wrong_type(path, f"a {enum_type.__name__} name or number", value)


def read_bytes(value: object, path: str) -> bytes:
    """Read proto ``bytes``: standard or URL-safe base64, padding optional."""
    text = read_string(value, path)
    unpadded = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolDecodeError(path, "expected base64 data") from None


def write_float(value: float) -> float | str:
    """Write a ``float``/``double``: a number, or ``NaN``/``Infinity``/``-Infinity``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def write_bytes(value: bytes) -> str:
    """Write ``bytes`` as standard padded base64."""
    return base64.b64encode(value).decode("ascii")


def as_reader(body: object, path: str = "") -> JsonReader:
    """Return ``body`` as a ``JsonReader`` (a reader is returned as is)."""
    return body if isinstance(body, JsonReader) else JsonReader(body, path)


class JsonReader:
    """A JSON object being read as a proto message; ``path`` names it in errors."""

    __slots__ = ("_object", "path")

    def __init__(self, value: object, path: str = "") -> None:
        if not isinstance(value, dict):
            raise _wrong_type(path or "message", "an object", value)
        self._object: dict[str, object] = value
        self.path = path

    def field_path(self, proto_name: str) -> str:
        """Return the dotted path of a field, in its JSON spelling."""
        name = json_name(proto_name)
        return f"{self.path}.{name}" if self.path else name

    def raw(self, proto_name: str) -> object:
        """Return a field's JSON value under either spelling; ``None`` if absent or null."""
        camel = json_name(proto_name)
        if camel != proto_name and camel in self._object and proto_name in self._object:
            raise ProtocolDecodeError(self.field_path(proto_name), "field given twice")
        if camel in self._object:
            return self._object[camel]
        return self._object.get(proto_name)

    def has(self, proto_name: str) -> bool:
        """Whether the field is present and not null."""
        return self.raw(proto_name) is not None

    def json_keys(self) -> Iterable[str]:
        """The JSON keys as given (for recognising oneof members this reader does not know)."""
        return self._object.keys()

    def _scalar(self, proto_name: str, default: T, read: Callable[[object, str], T]) -> T:
        value = self.raw(proto_name)
        if value is None:
            return default
        return read(value, self.field_path(proto_name))

    def string(self, proto_name: str) -> str:
        """Read a ``string`` field."""
        return self._scalar(proto_name, "", read_string)

    def optional_string(self, proto_name: str) -> str | None:
        """Read a ``string`` oneof member: ``None`` when it is not set."""
        value = self.raw(proto_name)
        return None if value is None else read_string(value, self.field_path(proto_name))

    def boolean(self, proto_name: str) -> bool:
        """Read a ``bool`` field."""
        return self._scalar(proto_name, False, read_bool)

    def integer(self, proto_name: str, bounds: tuple[int, int]) -> int:
        """Read an integer field within ``bounds`` (``INT32``, ``UINT64``…)."""
        return self._scalar(proto_name, 0, lambda v, p: read_int(v, p, bounds))

    def floating(self, proto_name: str) -> float:
        """Read a ``float``/``double`` field."""
        return self._scalar(proto_name, 0.0, read_float)

    def enum(self, proto_name: str, enum_type: type[E]) -> E:
        """Read an enum field (default: the member numbered 0)."""
        value = self.raw(proto_name)
        if value is None:
            return enum_type(0)
        return read_enum(value, self.field_path(proto_name), enum_type)

    def data(self, proto_name: str) -> bytes:
        """Read a ``bytes`` field."""
        return self._scalar(proto_name, b"", read_bytes)

    def message(self, proto_name: str) -> JsonReader | None:
        """Read a message field: ``None`` when absent."""
        value = self.raw(proto_name)
        return None if value is None else JsonReader(value, self.field_path(proto_name))

    def _list(self, proto_name: str) -> list[object]:
        value = self.raw(proto_name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _wrong_type(self.field_path(proto_name), "an array", value)
        return value

    def repeated(self, proto_name: str, read: Callable[[object, str], T]) -> tuple[T, ...]:
        """Read a repeated scalar field with ``read`` per element."""
        path = self.field_path(proto_name)
        return tuple(read(item, f"{path}[{i}]") for i, item in enumerate(self._list(proto_name)))

    def strings(self, proto_name: str) -> tuple[str, ...]:
        """Read a ``repeated string`` field."""
        return self.repeated(proto_name, read_string)

    def messages(self, proto_name: str) -> tuple[JsonReader, ...]:
        """Read a repeated message field."""
        return self.repeated(proto_name, JsonReader)

    def _map(self, proto_name: str, read: Callable[[object, str], T]) -> dict[str, T]:
        value = self.raw(proto_name)
        if value is None:
            return {}
        path = self.field_path(proto_name)
        if not isinstance(value, dict):
            raise _wrong_type(path, "an object", value)
        return {str(key): read(item, f"{path}[{key!r}]") for key, item in value.items()}

    def string_map(self, proto_name: str) -> dict[str, str]:
        """Read a ``map<string, string>`` field."""
        return self._map(proto_name, read_string)

    def double_map(self, proto_name: str) -> dict[str, float]:
        """Read a ``map<string, double>`` field."""
        return self._map(proto_name, read_float)


class JsonWriter:
    """Builds a proto message as a JSON object, omitting default values."""

    __slots__ = ("_object",)

    def __init__(self) -> None:
        self._object: dict[str, object] = {}

    def build(self) -> dict[str, object]:
        """Return the JSON object written so far."""
        return self._object

    def put(self, proto_name: str, value: object) -> JsonWriter:
        """Write a value as is, whatever it is (oneof members, always-present messages)."""
        self._object[json_name(proto_name)] = value
        return self

    def string(self, proto_name: str, value: str) -> JsonWriter:
        """Write a ``string`` unless empty."""
        return self.put(proto_name, value) if value else self

    def boolean(self, proto_name: str, value: bool) -> JsonWriter:
        """Write a ``bool`` unless false."""
        return self.put(proto_name, True) if value else self

    def int32(self, proto_name: str, value: int) -> JsonWriter:
        """Write a 32-bit integer (a JSON number) unless zero."""
        return self.put(proto_name, int(value)) if value else self

    def int64(self, proto_name: str, value: int) -> JsonWriter:
        """Write a 64-bit integer (a JSON string) unless zero."""
        return self.put(proto_name, str(int(value))) if value else self

    def floating(self, proto_name: str, value: float) -> JsonWriter:
        """Write a ``float``/``double`` unless zero."""
        return self.put(proto_name, write_float(value)) if value != 0 else self

    def enum(self, proto_name: str, value: enum.IntEnum) -> JsonWriter:
        """Write an enum by name unless it is the zero member."""
        return self.put(proto_name, value.name) if value != 0 else self

    def data(self, proto_name: str, value: bytes) -> JsonWriter:
        """Write ``bytes`` as base64 unless empty."""
        return self.put(proto_name, write_bytes(value)) if value else self

    def message(self, proto_name: str, value: Mapping[str, object] | None) -> JsonWriter:
        """Write a sub-message unless it is ``None`` or has nothing but defaults."""
        return self.put(proto_name, dict(value)) if value else self

    def repeated(self, proto_name: str, values: Iterable[object]) -> JsonWriter:
        """Write a repeated field unless empty."""
        items = list(values)
        return self.put(proto_name, items) if items else self

    def string_map(self, proto_name: str, value: Mapping[str, str]) -> JsonWriter:
        """Write a ``map<string, string>`` unless empty, keys sorted for stable output."""
        return self.put(proto_name, {k: value[k] for k in sorted(value)}) if value else self

    def double_map(self, proto_name: str, value: Mapping[str, float]) -> JsonWriter:
        """Write a ``map<string, double>`` unless empty, keys sorted for stable output."""
        if not value:
            return self
        return self.put(proto_name, {k: write_float(value[k]) for k in sorted(value)})
