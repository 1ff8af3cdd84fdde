"""Control characters in names a client chooses: refused at registration, escaped in log lines.

A worker picks its own name and labels. A newline (or a carriage return, an escape sequence, a
Unicode line separator) in one of them would let it write a fake line into the controller's
log, or rewrite the operator's terminal. So registration refuses them, and every log line that
shows such a name escapes them anyway (names stored before the check existed, headers).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

# Cc: C0 controls, DEL and C1 controls; Zl/Zp: U+2028/U+2029, which some viewers treat as
# line breaks.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_control_character(character: str) -> bool:
    """Return whether one character is a control character (or a line/paragraph separator)."""
    return unicodedata.category(character) in _CONTROL_CATEGORIES


def first_control_character(text: str) -> str | None:
    """Return the first control character of ``text``, or None if it has none."""
    return next((c for c in text if is_control_character(c)), None)


def _escaped(character: str) -> str:
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Return ``text`` with every control character escaped (``\\n``, ``\\x1b``, ``\\u2028``).

    A backslash is escaped too, so that an escaped name cannot pass for another one.
    """
    if first_control_character(text) is None and "\\" not in text:
        return text
    return "".join(
        "\\\\" if c == "\\" else _escaped(c) if is_control_character(c) else c for c in text
    )


def label_problem(labels: Mapping[str, str]) -> str | None:
    """Return why a worker's labels (its ``name`` among them) are refused, or None.

    The message names the label and the character, escaped, so that it is safe to show.
    """
    for key, value in labels.items():
        for what, text in (("label name", key), (f"label '{printable(key)}'", value)):
            character = first_control_character(text)
            if character is not None:
                return (
                    f"{what} '{printable(text)}' holds the control character "
                    f"'{_escaped(character)}'; names and labels may not hold control characters"
                )
    return None
