"""Checking written command lines (docs, unit files, compose files) against the real ``cirrus``
command tree, without running them: every subcommand must exist and every flag must parse."""

from __future__ import annotations

import contextlib
import io
import shlex
from collections.abc import Iterator, Sequence

import click

from app.cli import cli

PROGRAM = "cirrus"
SHELL_OPERATORS = frozenset({"|", "||", "&", "&&", ";", ";;", "(", ")"})


class NotACirrusCommand(ValueError):
    """A command line names a subcommand or a flag the ``cirrus`` tree does not have."""


def check_cirrus_arguments(arguments: Sequence[str]) -> str:
    """Parse the arguments after ``cirrus`` as click would; return the full command path
    (``cirrus worker run``) or raise ``NotACirrusCommand`` naming the problem."""
    command: click.Command = cli
    context = click.Context(cli, info_name=PROGRAM)
    remaining = list(arguments)
    while isinstance(command, click.Group) and remaining and not remaining[0].startswith("-"):
        name = remaining.pop(0)
        subcommand = command.get_command(context, name)
        if subcommand is None:
            raise NotACirrusCommand(f"{context.command_path} has no subcommand {name!r}")
        context = click.Context(subcommand, info_name=name, parent=context)
        command = subcommand
    if isinstance(command, click.Group) and not remaining:
        return context.command_path  # a bare group prints its help
    try:
        # Never invoked: parsing is the whole check. Eager options (--version) print; hide it.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            command.make_context(context.info_name, remaining, parent=context.parent) as parsed,
        ):
            return parsed.command_path
    except click.exceptions.Exit as done:  # --version, --help: eager options that stop parsing
        if done.exit_code != 0:
            raise NotACirrusCommand(f"{context.command_path}: exit {done.exit_code}") from None
        return context.command_path
    except click.ClickException as error:
        raise NotACirrusCommand(f"{context.command_path}: {error.format_message()}") from None


def cirrus_invocations(shell_text: str) -> Iterator[list[str]]:
    """Yield the arguments after ``cirrus`` of every ``cirrus`` command in a shell snippet:
    comments, ``VAR=value`` prefixes, a ``$`` prompt and ``&&``/``|``/``;`` chains allowed."""
    for line in shell_text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token in SHELL_OPERATORS:
                yield from _cirrus_segment(segment)
                segment = []
            else:
                segment.append(token)


def _cirrus_segment(segment: list[str]) -> Iterator[list[str]]:
    words = list(segment)
    while words and (words[0] == "$" or _is_assignment(words[0])):
        words.pop(0)
    if words and words[0] == PROGRAM:
        yield words[1:]


def _is_assignment(word: str) -> bool:
    name, equals, _value = word.partition("=")
    return bool(equals) and name.isidentifier() and name.upper() == name
