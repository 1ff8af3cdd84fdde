"""Parsing of human-written sizes, durations and memory amounts used in configuration files.

Three notations meet in Cirrus configuration:

* byte sizes such as ``640 KB`` or ``1 GiB`` (``log.rotate-size``): SI units are powers of
  1000, IEC units (``KiB``…) powers of 1024;
* Go durations such as ``10m`` or ``1h30m`` (``warmup.timeout``, ``tart-pre-pull``);
* VM memory amounts in MiB (``memory: 12``, ``4G``), where a bare number below 100 means GiB.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_KILO = 1000
_KIBI = 1024

# Unit spellings accepted by byte sizes, lower-cased, with their multipliers.
_BYTE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": _KILO,
    "kb": _KILO,
    "m": _KILO**2,
    "mb": _KILO**2,
    "g": _KILO**3,
    "gb": _KILO**3,
    "t": _KILO**4,
    "tb": _KILO**4,
    "p": _KILO**5,
    "pb": _KILO**5,
    "ki": _KIBI,
    "kib": _KIBI,
    "mi": _KIBI**2,
    "mib": _KIBI**2,
    "gi": _KIBI**3,
    "gib": _KIBI**3,
    "ti": _KIBI**4,
    "tib": _KIBI**4,
    "pi": _KIBI**5,
    "pib": _KIBI**5,
}

_SIZE_PATTERN = re.compile(r"(?P<number>[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]*)")

# Go duration units in nanoseconds.
_NANOS_PER_UNIT: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # Go accepts the micro sign
    "μs": 1_000,  # and the Greek letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_NANOS_PER_SECOND = 1_000_000_000
_DURATION_PART = re.compile(r"(?P<number>[0-9]*(?:\.[0-9]*)?)(?P<unit>[^0-9.]*)")

_MEMORY_PATTERN = re.compile(r"(?P<number>[0-9]+)(?P<suffix>[^0-9]*)")
_MEMORY_GIB_BORDER = 100
_MEMORY_MIB_SUFFIXES = frozenset({"m", "mb", "mi"})
_MEMORY_GIB_SUFFIXES = frozenset({"g", "gb", "gi"})


def parse_size_bytes(text: str) -> int:
    """Return the bytes of a size such as ``640 KB``, ``1.5 MB``, ``100 MiB`` or ``1024``."""
    stripped = text.strip()
    match = _SIZE_PATTERN.fullmatch(stripped)
    if match is None:
        raise ValueError(f"invalid size {text!r}: expected a number and a unit such as '100 MiB'")
    unit = match["unit"].lower()
    multiplier = _BYTE_UNITS.get(unit)
    if multiplier is None:
        raise ValueError(
            f"invalid size {text!r}: unknown unit {match['unit']!r} "
            "(use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
        )
    try:
        number = Decimal(match["number"].replace(",", ""))
    except InvalidOperation as error:  # e.g. a lone "."
        raise ValueError(f"invalid size {text!r}: {match['number']!r} is not a number") from error
    # Fractions of a byte are dropped, as a byte count is whole.
    return int(number * multiplier)


def parse_duration_seconds(text: str) -> int:
    """Return the whole seconds (truncated) of a Go duration: ``10m``, ``1h30m``, ``1.5h``."""
    return parse_duration_nanoseconds(text) // _NANOS_PER_SECOND


def parse_duration_nanoseconds(text: str) -> int:
    """Return the nanoseconds of a non-negative Go duration (``500ms``, ``2h45m``, ``0``)."""
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    body = stripped.removeprefix("+")
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"invalid duration {text!r}: empty")
    total = Decimal(0)
    position = 0
    while position < len(body):
        part = _DURATION_PART.match(body, position)
        if part is None or part.end() == position:  # pragma: no cover - the pattern always advances
            raise ValueError(f"invalid duration {text!r}")
        number_text, unit = part["number"], part["unit"]
        if number_text in ("", "."):
            raise ValueError(f"invalid duration {text!r}: expected a number at {body[position:]!r}")
        if not unit:
            raise ValueError(f"invalid duration {text!r}: missing unit (e.g. '10m', '600s', '3h')")
        nanos = _NANOS_PER_UNIT.get(unit)
        if nanos is None:
            raise ValueError(
                f"invalid duration {text!r}: unknown unit {unit!r} (use ns, us, ms, s, m or h)"
            )
        total += Decimal(number_text) * nanos
        position = part.end()
    return int(total)


def parse_memory_mib(value: str | int) -> int:
    """Return MiB of a Cirrus memory amount (``4G``, ``4096M``); bare numbers < 100 are GiB."""
    if isinstance(value, bool):
        raise ValueError(f"invalid memory {value!r}: expected a number such as 4096M or 4G")
    text = str(value).strip().lower()
    match = _MEMORY_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid memory {value!r}: expected a whole number such as 4096M or 4G")
    amount = int(match["number"])
    suffix = match["suffix"]
    if suffix == "":
        # A bare small number is far too little memory in MiB, so it is taken as GiB.
        return amount * _KIBI if amount < _MEMORY_GIB_BORDER else amount
    if suffix in _MEMORY_MIB_SUFFIXES:
        return amount
    if suffix in _MEMORY_GIB_SUFFIXES:
        return amount * _KIBI
    raise ValueError(f"unsupported digital information unit suffix: {match['suffix']!r}")
