"""``cirrus run``'s flags turned into what the run needs: environment, affected files, output.

Each function raises ``LocalRunError`` with exit code 2 for a value the user got wrong, naming
the flag (and file and line).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV_NAME_FORBIDDEN = frozenset("=\n\r\0")


class LocalRunError(Exception):
    """``cirrus run`` cannot go on; ``exit_code`` says why (2: bad input, 1: failure)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class OutputFormat(enum.StrEnum):
    """``-o/--output``: how the build is shown."""

    AUTO = "auto"
    INTERACTIVE = "interactive"
    SIMPLE = "simple"
    GITHUB_ACTIONS = "github-actions"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything ``cirrus run`` was asked for besides the configuration file."""

    task: str | None = None
    worker_file: str | None = None
    environment: Mapping[str, str] | None = None
    affected_files: tuple[str, ...] = ()
    affected_files_git: str | None = None
    dirty: bool = False
    output: OutputFormat = OutputFormat.AUTO
    container_backend: str = "auto"
    artifacts_dir: str | None = None


def _variable(text: str, where: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """``NAME=VALUE`` sets; ``NAME`` passes this process's value through (nothing if unset)."""
    name, equals, value = text.partition("=")
    if not name or any(c in ENV_NAME_FORBIDDEN for c in name) or name != name.strip():
        raise LocalRunError(f"cirrus: {where}: expected NAME=VALUE or NAME, got {text!r}", 2)
    if equals:
        return name, value
    passed = environ.get(name)
    return None if passed is None else (name, passed)


def env_arguments(values: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``-e/--env`` flags (the last one of a name wins)."""
    found = (_variable(value, "-e/--env", environ) for value in values)
    return dict(pair for pair in found if pair is not None)


def env_file(path: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of an ``--env-file``: ``NAME=VALUE`` or ``NAME`` lines; blank lines and
    ``#`` comments are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise LocalRunError(f"cirrus: --env-file: cannot read {path}: {reason}", 2) from None
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pair = _variable(line.rstrip("\r"), f"--env-file {path}, line {number}", environ)
        if pair is not None:
            variables[pair[0]] = pair[1]
    return variables


def affected_files(values: Sequence[str]) -> tuple[str, ...]:
    """The files of ``--affected-files A,B`` flags (repeatable), in order, without repeats."""
    names = (name.strip() for value in values for name in value.split(","))
    return tuple(dict.fromkeys(name for name in names if name))


def resolve_output(requested: str, is_terminal: bool, environ: Mapping[str, str]) -> OutputFormat:
    """``auto`` as the original chose it: GitHub Actions' format inside a GitHub workflow, the
    interactive view on a terminal outside CI, simple lines otherwise."""
    chosen = OutputFormat(requested)
    if chosen is not OutputFormat.AUTO:
        return chosen
    if environ.get("GITHUB_ACTIONS") == "true":
        return OutputFormat.GITHUB_ACTIONS
    if is_terminal and environ.get("CI") != "true":
        return OutputFormat.INTERACTIVE
    return OutputFormat.SIMPLE
