"""How a command's script is started, from its environment, as the Cirrus agent decided it.

* ``CIRRUS_SHELL`` unset: the script runs as ``/bin/sh -e <file>`` (this project's contract:
  ``/bin/sh`` semantics, stopping at the first failing line). The original agent preferred
  ``bash`` when one was on its ``PATH``; this worker keeps ``/bin/sh`` so that a script means the
  same on every machine.
* ``CIRRUS_SHELL`` set to a command line (``bash``, ``/bin/zsh``, ``sh -x``): its words, then the
  script file, as the agent ran it. The file starts with ``set -e`` and turns ``pipefail`` on
  where the shell has it, as the agent's did.
* ``CIRRUS_SHELL: direct``: no shell. The script text (the caller passes the first script line,
  already expanded) is split into words like a shell would split it (quotes, backslashes) and
  run as a program with those arguments.
* ``CIRRUS_WORKING_DIR`` is the directory the command starts in (relative to the instance's
  own working directory when relative); the instance creates it when missing.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import InstanceError

DEFAULT_SHELL = "/bin/sh"
DIRECT = "direct"
SHELL_VARIABLE = "CIRRUS_SHELL"
WORKING_DIR_VARIABLE = "CIRRUS_WORKING_DIR"
# The agent's ``set -o pipefail 2>/dev/null || true`` makes dash exit (a failing special
# built-in ends a POSIX shell): try it in a subshell first.
CUSTOM_SHELL_PROLOGUE = "set -e\n(set -o pipefail) 2>/dev/null && set -o pipefail\n"


@dataclass(frozen=True, slots=True)
class ScriptLaunch:
    """A script's start: the program and arguments, the file text, the working directory.

    ``needs_file``: the script text goes to a file whose path is appended to ``argv``; else
    ``argv`` is the whole command (``direct``).
    """

    argv: tuple[str, ...]
    text: str
    working_directory: str
    needs_file: bool


def working_directory(env: Mapping[str, str], default: str) -> str:
    """The directory commands start in: ``CIRRUS_WORKING_DIR`` (made absolute) or ``default``."""
    chosen = env.get(WORKING_DIR_VARIABLE) or default
    return posixpath.normpath(posixpath.join(default, chosen))


def split_words(line: str, what: str) -> tuple[str, ...]:
    """Split ``line`` into words like a POSIX shell (no expansion); ``InstanceError`` if bad."""
    try:
        words = tuple(shlex.split(line, comments=False, posix=True))
    except ValueError as error:
        raise InstanceError(f"cannot split {what} {line!r} into words: {error}") from error
    if not words:
        raise InstanceError(f"{what} is empty: there is no program to run")
    return words


def script_launch(script: str, env: Mapping[str, str], default_directory: str) -> ScriptLaunch:
    """Decide how ``script`` starts under ``env`` (``CIRRUS_SHELL``, ``CIRRUS_WORKING_DIR``)."""
    directory = working_directory(env, default_directory)
    shell = env.get(SHELL_VARIABLE)
    if shell == DIRECT:
        argv = split_words(script, "the direct command line (CIRRUS_SHELL is direct)")
        return ScriptLaunch(argv, "", directory, needs_file=False)
    text = script if script.endswith("\n") else script + "\n"
    if not shell:
        return ScriptLaunch((DEFAULT_SHELL, "-e"), text, directory, needs_file=True)
    argv = split_words(shell, "CIRRUS_SHELL")
    return ScriptLaunch(argv, CUSTOM_SHELL_PROLOGUE + text, directory, needs_file=True)
