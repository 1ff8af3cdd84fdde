"""Which changed files a ``changesInclude`` pattern matches: Java NIO globs, as Cirrus read them.

Cirrus (``bfunc.go`` of cirrus-cli, through ``go-java-glob``) matches every pattern against the
whole path of each changed file, with the glob syntax of Java's ``FileSystem.getPathMatcher``:

* ``*`` is any run of characters except ``/``; ``**`` is any run, ``/`` included (so
  ``docs/**`` matches ``docs/a/b.md``, ``**.go`` matches ``a/b.go`` and ``b.go``, but
  ``**/*.go`` needs a ``/``: it does not match a top-level ``b.go``);
* ``?`` is one character except ``/``;
* ``[abc]``, ``[a-z]``, ``[!a-z]`` (a negated class never matches ``/``); ``/`` inside a class
  is an error;
* ``{a,b}`` is one of the comma-separated sub-patterns (groups do not nest);
* ``\\`` takes the next character literally; everything else is literal, case-sensitive.

The same function serves the Starlark builtins ``changes_include``/``changes_include_only``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


class PatternError(ValueError):
    """A glob pattern is malformed; the message names the pattern and the place."""


def count_matching(files: Sequence[str], patterns: Iterable[str]) -> int:
    """Return how many of ``files`` match at least one of ``patterns`` (raise ``PatternError``
    for a malformed pattern)."""
    compiled = [glob_to_regex(pattern) for pattern in patterns]
    return sum(1 for path in files if any(regex.fullmatch(path) for regex in compiled))


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Return the regular expression (for ``fullmatch``) of a Java NIO glob ``pattern``."""
    out: list[str] = []
    in_group = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "\\":
            if index == len(pattern):
                raise _bad(pattern, index - 1, "nothing to escape after \\")
            out.append(re.escape(pattern[index]))
            index += 1
        elif char == "[":
            text, index = _bracket(pattern, index)
            out.append(text)
        elif char == "{":
            if in_group:
                raise _bad(pattern, index - 1, "{ } groups cannot nest")
            out.append("(?:(?:")
            in_group = True
        elif char == "}" and in_group:
            out.append("))")
            in_group = False
        elif char == "," and in_group:
            out.append(")|(?:")
        elif char == "*":
            if pattern.startswith("*", index):
                out.append(".*")
                index += 1
            else:
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    if in_group:
        raise _bad(pattern, len(pattern), "missing }")
    return re.compile("".join(out))


def _bracket(pattern: str, index: int) -> tuple[str, int]:
    """Translate the class whose ``[`` is just before ``index``; return it and the next index."""
    out = ["["]
    if pattern.startswith("^", index):
        # Java takes a leading ^ literally; only ! negates.
        out.append(r"\^")
        index += 1
    else:
        negated = pattern.startswith("!", index)
        if negated:
            out.append("^")
            index += 1
        if pattern.startswith("-", index):
            out.append(r"\-")
            index += 1
        if negated:
            out.append("/")
    has_range_start = False
    last = ""
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "]":
            out.append("]")
            return "".join(out), index
        if char == "/":
            raise _bad(pattern, index - 1, "/ inside [ ]")
        if char != "-":
            out.append(re.escape(char))
            has_range_start = True
            last = char
            continue
        if not has_range_start:
            raise _bad(pattern, index - 1, "invalid range")
        if index == len(pattern):
            break
        end = pattern[index]
        index += 1
        if end == "]":
            out.append(r"\-]")
            return "".join(out), index
        if end < last:
            raise _bad(pattern, index - 3, "invalid range")
        out.append("-" + re.escape(end))
        has_range_start = False
    raise _bad(pattern, len(pattern), "missing ]")


def _bad(pattern: str, offset: int, problem: str) -> PatternError:
    return PatternError(f"bad pattern '{pattern}': {problem} at character {offset + 1}")
