"""``cirrus cron add|list``: builds of a repository's branch at the times of a cron expression.

    cirrus cron add NAME --repository OWNER/NAME --branch BRANCH --expression CRON
    cirrus cron list

Expressions are the classic five fields (minute hour day month weekday, UTC), read by cronsim
on the controller. Adding a cron of the same name and repository again replaces it. Exit codes
as every user command: 1 when the controller refuses or cannot be reached, 2 for a usage error.
"""

from __future__ import annotations

import click

from adapters.controller_api import dumps
from adapters.controller_crons import CronEntry
from app.controller_commands import OneLineUsageCommand
from app.user_commands import USAGE_EXIT_CODE, api_options, call_controller, fail
from domain.repositories import RepositoryError, check_repository_name


@click.group()
def cron() -> None:
    """Run builds of a branch on a schedule."""


@cron.command(cls=OneLineUsageCommand)
@click.argument("name")
@click.option("--repository", required=True, metavar="OWNER/NAME", help="A registered repository.")
@click.option("--branch", required=True, metavar="BRANCH", help="The branch to build.")
@click.option("--expression", required=True, metavar="CRON", help="When, e.g. '0 3 * * *' (UTC).")
@api_options
def add(
    name: str,
    repository: str,
    branch: str,
    expression: str,
    controller: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Add a cron (or replace the one of that name); its builds have CIRRUS_CRON=NAME."""
    try:
        checked = check_repository_name(repository)
    except RepositoryError as error:
        fail(f"--repository: {error}", USAGE_EXIT_CODE)
    body = {"name": name, "repository": checked, "branch": branch, "expression": expression}
    answer = call_controller(controller, token, lambda client: client.add_cron(body))
    if as_json:
        click.echo(dumps(answer.document()))
        return
    click.echo(cron_line(answer))


@cron.command(name="list", cls=OneLineUsageCommand)
@api_options
def list_crons(controller: str, token: str | None, as_json: bool) -> None:
    """List the crons, with their next and last runs."""
    answer = call_controller(controller, token, lambda client: client.list_crons())
    if as_json:
        click.echo(dumps({"crons": [entry.document() for entry in answer.crons]}))
        return
    if not answer.crons:
        click.echo("no crons")
    for entry in answer.crons:
        click.echo(cron_line(entry))


def cron_line(entry: CronEntry) -> str:
    """Return the line ``cron add``/``cron list`` print about a cron."""
    line = (
        f"cron {entry.name} of {entry.repository}: branch {entry.branch}, "
        f"'{entry.expression}', next run {entry.next_run}"
    )
    if entry.last_build_id:
        line += f", last build {entry.last_build_id}"
    if entry.last_error:
        line += f", last error: {entry.last_error}"
    return line
