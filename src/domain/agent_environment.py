"""The task environment as the Cirrus agent treated it at run time, as pure functions.

The values of a task's environment are expanded by ``cirrus_config.expand.expand_environment``
(the agent's rule: the base environment answers first, unknown names read as their default or
nothing, self-references keep their value). Here is the rest of what the agent did:

* a text expanded *for a command* (a ``direct`` command line, a file path) is expanded once,
  shell-like (Go's ``os.Expand``, ``%NAME%`` read as ``${NAME}``), the task's variables
  answering first, then the base environment (``expand_for_command``);
* the ``$CIRRUS_ENV`` file's ``KEY=VALUE`` lines (``parse_cirrus_env``);
* the environment a script starts with in an instance, as ``env`` prints it
  (``parse_env_output``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# The characters that are a variable name on their own after ``$``, as in a POSIX shell.
_SPECIAL = frozenset("*#$@!?-0123456789")
_WINDOWS_REFERENCE = re.compile(r"%(\w+)%", re.ASCII)
_NAME_LINE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")

Lookup = Callable[[str], str | None]
# Prints the environment NUL-separated where ``env`` can (GNU, BusyBox), else one per line.
PRINT_ENVIRONMENT = "env -0 2>/dev/null || env"


class CirrusEnvError(ValueError):
    """A ``$CIRRUS_ENV`` file that is not made of ``KEY=VALUE`` lines."""


def _is_name_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


def _reference(text: str) -> tuple[str, int]:
    """The name after a ``$`` at the start of ``text`` and how many characters it takes.

    An empty name with a width means bad syntax (the characters are dropped); an empty name
    and no width means a lone ``$`` (kept).
    """
    if text[0] == "{":
        if len(text) > 2 and text[1] in _SPECIAL and text[2] == "}":
            return text[1], 3
        end = text.find("}", 1)
        if end == 1:
            return "", 2
        if end < 0:
            return "", 1
        return text[1:end], end + 1
    if text[0] in _SPECIAL:
        return text[0], 1
    width = 0
    while width < len(text) and _is_name_char(text[width]):
        width += 1
    return text[:width], width


def expand_text(text: str, lookup: Lookup, *, keep_unknown: bool = False) -> str:
    """Replace every reference in ``text`` by ``lookup(name)``, else its default (or, with
    ``keep_unknown``, the reference as written): once, as Go's ``os.Expand`` reads ``text``."""
    text = _WINDOWS_REFERENCE.sub(r"${\1}", text)
    if "$" not in text:
        return text
    parts: list[str] = []
    start = 0
    index = 0
    while index < len(text):
        if text[index] == "$" and index + 1 < len(text):
            parts.append(text[start:index])
            name, width = _reference(text[index + 1 :])
            if name:
                variable, _, default = name.partition(":")
                value = lookup(variable)
                if value is None:
                    value = text[index : index + 1 + width] if keep_unknown else default
                parts.append(value)
            elif width == 0:
                parts.append("$")
            index += width + 1
            start = index
        else:
            index += 1
    parts.append(text[start:])
    return "".join(parts)


def expand_for_command(text: str, variables: Mapping[str, str], base: Mapping[str, str]) -> str:
    """Expand a text used by a command itself: the task's variables answer first, then the base."""

    def lookup(name: str) -> str | None:
        found = variables.get(name)
        return found if found is not None else base.get(name)

    return expand_text(text, lookup)


def parse_cirrus_env(text: str) -> dict[str, str]:
    """The ``KEY=VALUE`` lines a command wrote to ``$CIRRUS_ENV`` (later lines win).

    Like the agent, any line without ``=`` (an empty one too) rejects the whole file.
    """
    result: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        key, equals, value = line.removesuffix("\r").partition("=")
        if not equals:
            raise CirrusEnvError(
                f"CIRRUS_ENV file should contain lines in KEY=VALUE format (line {number}: "
                f"{line[:80]!r})"
            )
        result[key] = value
    return result


def parse_env_output(text: str) -> dict[str, str]:
    """The environment printed by ``env -0`` (NUL-separated) or, failing that, by ``env``.

    In ``env``'s line form, a line that does not start with ``NAME=`` continues the value above.
    """
    result: dict[str, str] = {}
    if "\0" in text:
        for entry in text.split("\0"):
            name, equals, value = entry.partition("=")
            if equals and name:
                result[name] = value
        return result
    last: str | None = None
    for line in text.removesuffix("\n").split("\n"):
        if _NAME_LINE.match(line):
            last, _, value = line.partition("=")
            result[last] = value
        elif last is not None:
            result[last] += "\n" + line
    return result
