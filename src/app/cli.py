"""The ``cirrus`` command line: entry point and command groups."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click
import yaml

from adapters.config.rendering import effective_document
from app.config_summary import summary_lines
from app.version import version
from app.worker_options import load_config_or_exit, worker_options


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used.

    Importing every command module up front would load the controller's web server and the
    OpenTelemetry exporters into every ``cirrus worker run``: megabytes of resident memory.
    """

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Eager and lazy command names, sorted."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command, importing its module on first use."""
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    lazy_commands={
        "build": "app.user_commands:build",
        "task": "app.task_commands:task",
        "workers": "app.user_commands:workers",
        "secret": "app.secret_commands:secret",
        "repo": "app.repo_commands:repo",
        "cron": "app.cron_commands:cron",
        "token": "app.token_commands:token",
        "controller": "app.controller_commands:controller",
        "run": "app.local_run:run",
    },
)
@click.version_option(version(), "--version", prog_name="cirrus", message="%(prog)s %(version)s")
def cli() -> None:
    """Self-hosted Cirrus CI: persistent worker, controller and local runs."""


@cli.group(
    cls=LazyGroup,
    lazy_commands={
        "run": "app.worker_commands:run",
        "pause": "app.worker_commands:pause",
        "resume": "app.worker_commands:resume",
    },
)
def worker() -> None:
    """Run, pause, resume or validate a persistent worker."""


@worker.command()
@worker_options
def validate(**options: Any) -> None:
    """Check the configuration (flags, environment, file) and print it as YAML."""
    config = load_config_or_exit(**options)
    click.echo(
        yaml.safe_dump(
            effective_document(config), sort_keys=False, default_flow_style=False, width=1000
        ),
        nl=False,
    )
    # A short human summary for reviewing the security policy, as YAML comments so that
    # stdout stays one YAML document.
    click.echo("".join(f"# {line}\n" for line in summary_lines(config)), nl=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="cirrus")
