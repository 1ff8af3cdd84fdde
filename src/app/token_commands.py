"""``cirrus token create|list``: user tokens with roles, over the controller's HTTP API (with
the admin token, like the other user commands; exit codes as in ``app.user_commands``)."""

from __future__ import annotations

import click

from adapters.controller_api import dumps
from app.controller_commands import OneLineUsageCommand
from app.user_commands import api_options, call_controller
from domain.tokens import Role


@click.group()
def token() -> None:
    """Make and list user tokens (viewer, operator, admin)."""


@token.command(cls=OneLineUsageCommand)
@click.option(
    "--role",
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="viewer: read; operator: also submit, cancel, re-run, trigger; admin: everything.",
)
@click.option("--name", default="", metavar="NAME", help="What the token is for.")
@api_options
def create(role: str, name: str, controller: str, token: str | None, as_json: bool) -> None:
    """Make a user token; it is printed this once (the controller keeps only its hash)."""
    made = call_controller(controller, token, lambda client: client.create_token(role, name))
    if as_json:
        click.echo(dumps(made.document()))
        return
    click.echo(made.token)
    click.echo(
        f"token {made.id} ({made.name}, role {made.role}): keep it now, it is not shown again",
        err=True,
    )


@token.command(name="list", cls=OneLineUsageCommand)
@api_options
def list_tokens(controller: str, token: str | None, as_json: bool) -> None:
    """List the user tokens: names, roles and creation times (never the tokens)."""
    found = call_controller(controller, token, lambda client: client.list_tokens())
    if as_json:
        click.echo(dumps(found.document()))
        return
    if not found.tokens:
        click.echo("no user tokens")
    for entry in found.tokens:
        click.echo(f"{entry.id}  {entry.role:<8}  {entry.created_at}  {entry.name}")
