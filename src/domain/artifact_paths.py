"""Which files an artifacts instruction's ``paths`` name: globs with ``**``, as the agent matched.

The agent matched with ``doublestar``: ``*`` any run within one path segment, ``?`` one
character, ``[...]`` a class, ``{a,b}`` alternatives, and a ``**`` segment any number of
directories (none included). Patterns are relative to the working directory; an absolute one
must point inside it (the agent refused others with "path is outside of CIRRUS_WORKING_DIR").
Paths here are POSIX, without a leading ``./``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

GLOB_CHARACTERS = frozenset("*?[{")
OUTSIDE_MESSAGE = "path is outside of CIRRUS_WORKING_DIR"


class PathOutsideWorkingDir(ValueError):
    """An artifact path points outside the working directory."""


def has_glob(pattern: str) -> bool:
    """Whether ``pattern`` has any glob syntax."""
    return any(c in GLOB_CHARACTERS for c in pattern)


def relative_pattern(pattern: str, working_dir: str) -> str:
    """``pattern`` relative to ``working_dir``; ``PathOutsideWorkingDir`` if it leaves it."""
    if posixpath.isabs(pattern):
        base = posixpath.normpath(working_dir)
        normalised = posixpath.normpath(pattern)
        if normalised == base:
            return "."
        if not normalised.startswith(base.rstrip("/") + "/"):
            raise PathOutsideWorkingDir(f"{pattern}: {OUTSIDE_MESSAGE}")
        pattern = normalised[len(base.rstrip("/")) + 1 :]
    normalised = posixpath.normpath(pattern)
    if normalised == ".." or normalised.startswith("../"):
        raise PathOutsideWorkingDir(f"{pattern}: {OUTSIDE_MESSAGE}")
    return normalised


def expand_braces(pattern: str) -> tuple[str, ...]:
    """The patterns of every ``{a,b}`` alternative (innermost first, nested ones too)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return (pattern,)
    head, tail = pattern[: match.start()], pattern[match.end() :]
    expanded: list[str] = []
    for option in match.group(1).split(","):
        expanded.extend(expand_braces(head + option + tail))
    return tuple(dict.fromkeys(expanded))


def static_root(pattern: str) -> str:
    """The directory part of ``pattern`` before its first glob segment (``.`` if none)."""
    fixed: list[str] = []
    for segment in pattern.split("/")[:-1]:
        if has_glob(segment):
            break
        fixed.append(segment)
    return "/".join(fixed) or "."


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = segment[i + 1 : end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                out.append(f"[{'^' if negate else ''}{body.replace(chr(92), chr(92) * 2)}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching the whole relative path of a file ``pattern`` (braces expanded) names."""
    alternatives: list[str] = []
    for single in expand_braces(pattern):
        segments = posixpath.normpath(single).split("/")
        parts: list[str] = []
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            if segment == "**":
                parts.append(".*" if last else "(?:[^/]+/)*")
            else:
                parts.append(_segment_regex(segment) + ("" if last else "/"))
        alternatives.append("".join(parts))
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def match_files(pattern: str, files: Iterable[str]) -> tuple[str, ...]:
    """The ``files`` (relative paths) that the relative ``pattern`` names, sorted."""
    regex = pattern_regex(pattern)
    return tuple(sorted(f for f in files if regex.fullmatch(f)))
