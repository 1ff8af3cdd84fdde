"""``cirrus repo add|list``: register forge repositories with the controller and list them.

    cirrus repo add OWNER/NAME --forge github|gitea --url FORGE_API_URL --token-file FILE
                    [--clone-url URL] [--webhook-secret-file FILE]
    cirrus repo list

The forge token (and the webhook secret, when given) come from files, never from the command
line, where the shell's history and the process list would show them; trailing newlines are
dropped. Without ``--webhook-secret-file`` a new repository gets a secret the controller
generates, printed this one time. Adding a repository again updates it and says so; its
webhook secret stays unless ``--webhook-secret-file`` gives a new one. Exit codes as every
user command: 1 when the controller refuses or cannot be reached, 2 for a usage error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from adapters.controller_api import ApiModel, RepositoryEntry, RepositoryRegistered, dumps
from app.controller_commands import OneLineUsageCommand
from app.user_commands import USAGE_EXIT_CODE, api_options, call_controller, fail
from domain.repositories import (
    Forge,
    RepositoryError,
    check_repository_name,
    check_url,
)


def as_sent(answer: ApiModel) -> object:
    """Return an answer as the controller sent it (no field it left out, such as an unknown
    ``defaultBranch``)."""
    return answer.model_dump(mode="json", by_alias=True, exclude_unset=True)


def read_credential(path: str, option: str) -> str:
    """Return the one-line credential in the file ``path`` without its trailing newlines (exit
    2 naming ``option`` when the file cannot be read, is empty or holds several lines)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        fail(f"{option}: cannot read {path}: {reason}", USAGE_EXIT_CODE)
    value = text.rstrip("\r\n")
    if not value.strip():
        fail(f"{option}: {path} is empty", USAGE_EXIT_CODE)
    if "\n" in value or "\r" in value:
        fail(f"{option}: {path} holds more than one line", USAGE_EXIT_CODE)
    return value


def _checked(check: Callable[..., str], *arguments: str) -> str:
    """Run a domain check; its ``RepositoryError`` is a usage error (exit 2)."""
    try:
        return check(*arguments)
    except RepositoryError as error:
        fail(str(error), USAGE_EXIT_CODE)


@click.group()
def repo() -> None:
    """Register forge repositories with the controller."""


@repo.command(cls=OneLineUsageCommand)
@click.argument("name", metavar="OWNER/NAME")
@click.option(
    "--forge",
    required=True,
    type=click.Choice([forge.value for forge in Forge]),
    help="The forge the repository lives on (gitea also for Forgejo).",
)
@click.option(
    "--url",
    "api_url",
    required=True,
    metavar="FORGE_API_URL",
    help="The forge's API, e.g. https://api.github.com or https://gitea.example/api/v1.",
)
@click.option(
    "--token-file",
    required=True,
    metavar="FILE",
    help="File holding the forge token (to read the repository and post statuses).",
)
@click.option("--clone-url", metavar="URL", help="Where workers clone from [from --url].")
@click.option(
    "--webhook-secret-file",
    metavar="FILE",
    help="File holding the webhook secret [generated for a new repository, printed once].",
)
@api_options
def add(
    name: str,
    forge: str,
    api_url: str,
    token_file: str,
    clone_url: str | None,
    webhook_secret_file: str | None,
    controller: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Register a repository, or update the registration of one.

    The token and the webhook secret are stored encrypted; tasks of the repository's builds get
    the token as CIRRUS_REPO_CLONE_TOKEN.
    """
    registration = {
        "name": _checked(check_repository_name, name),
        "forge": forge,
        "url": _checked(check_url, api_url, "--url"),
        "token": read_credential(token_file, "--token-file"),
    }
    if clone_url is not None:
        registration["cloneUrl"] = _checked(check_url, clone_url, "--clone-url")
    if webhook_secret_file is not None:
        registration["webhookSecret"] = read_credential(
            webhook_secret_file, "--webhook-secret-file"
        )
    answer = call_controller(controller, token, lambda client: client.add_repository(registration))
    if as_json:
        click.echo(dumps(as_sent(answer)))
        return
    for line in added_lines(answer, webhook_secret_file):
        click.echo(line)


def added_lines(answer: RepositoryRegistered, webhook_secret_file: str | None) -> list[str]:
    """Return what ``repo add`` prints about a registration."""
    what = "registered" if answer.created else "updated (it was registered already)"
    lines = [
        f"repository {answer.name} {what}: {answer.forge}, API {answer.url}",
        f"clone URL: {answer.clone_url}",
    ]
    if answer.webhook_secret is not None:
        lines += [
            f"webhook secret: {answer.webhook_secret}",
            "  (shown only this once: enter it as the secret of the forge's webhook)",
        ]
    elif webhook_secret_file is not None:
        lines.append(f"webhook secret: the one in {webhook_secret_file}")
    else:
        lines.append("webhook secret: unchanged")
    return lines


@repo.command(name="list", cls=OneLineUsageCommand)
@api_options
def list_repositories(controller: str, token: str | None, as_json: bool) -> None:
    """List the registered repositories (without their credentials)."""
    answer = call_controller(controller, token, lambda client: client.list_repositories())
    if as_json:
        click.echo(dumps(as_sent(answer)))
        return
    if not answer.repositories:
        click.echo("no repositories")
    for entry in answer.repositories:
        click.echo(listed_line(entry))


def listed_line(entry: RepositoryEntry) -> str:
    """Return the line ``repo list`` prints for a repository."""
    branch = entry.default_branch or "unknown"
    return (
        f"{entry.name}: {entry.forge}, API {entry.url}; clone URL {entry.clone_url}; "
        f"default branch {branch}; added {entry.created_at}"
    )
