"""``cirrus secret encrypt``: ask the controller for the ``ENCRYPTED[...]`` text of a value.

    cirrus secret encrypt [--repository OWNER/NAME] [VALUE | -] [--controller URL] [--json]

The value comes from the argument, or from stdin when it is absent or ``-`` (a prompt that does
not echo when stdin is a terminal). One trailing newline of stdin is dropped, so that
``echo "$TOKEN" | cirrus secret encrypt`` encrypts the token and not the newline. The text is
printed on stdout alone (``--json``: ``{"encrypted": "..."}``). Exit codes as every user
command: 1 when the controller refuses or cannot be reached, 2 for a usage error.
"""

from __future__ import annotations

import sys

import click

from adapters.controller_api import dumps
from app.controller_commands import OneLineUsageCommand
from app.user_commands import USAGE_EXIT_CODE, api_options, call_controller, fail

STDIN = "-"


def read_value(argument: str | None) -> str:
    """Return the value to encrypt: the argument, else stdin (prompted on a terminal)."""
    if argument is not None and argument != STDIN:
        return argument
    if sys.stdin.isatty():
        text: str = click.prompt("Value to encrypt", hide_input=True, err=True)
        return text
    text = sys.stdin.read()
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


@click.group()
def secret() -> None:
    """Encrypt values for the env of a .cirrus.yml."""


@secret.command(cls=OneLineUsageCommand)
@click.argument("value", required=False, metavar="[VALUE | -]")
@click.option(
    "--repository",
    metavar="OWNER/NAME",
    default="",
    help="Only builds of this repository may decrypt it [any repository].",
)
@api_options
def encrypt(
    value: str | None, repository: str, controller: str, token: str | None, as_json: bool
) -> None:
    """Print the ENCRYPTED[...] text of VALUE (read from stdin when absent or -).

    Prefer stdin: an argument is visible in the shell's history and the process list.
    """
    plain = read_value(value)
    if not plain:
        fail("the value to encrypt is empty", USAGE_EXIT_CODE)
    answer = call_controller(
        controller, token, lambda client: client.encrypt_secret(plain, repository)
    )
    click.echo(dumps(answer.document()) if as_json else answer.encrypted)
