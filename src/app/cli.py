"""The ``cirrus`` command line: entry point and command groups."""

from __future__ import annotations

from typing import Any

import click
import yaml

from adapters.config.rendering import effective_document
from app.version import version
from app.worker_options import load_config_or_exit, worker_options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), "--version", prog_name="cirrus", message="%(prog)s %(version)s")
def cli() -> None:
    """Self-hosted Cirrus CI: persistent worker, controller and local runs."""


@cli.group()
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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="cirrus")


# Registered here, after the group exists, so that the command module stays separate.
from app.worker_commands import pause, resume, run  # noqa: E402 - needs the group defined above

worker.add_command(run)
worker.add_command(pause)
worker.add_command(resume)

from app.user_commands import build, task, workers  # noqa: E402 - needs the group defined above

cli.add_command(build)
cli.add_command(task)
cli.add_command(workers)

from app.controller_commands import controller  # noqa: E402 - needs the group defined above

cli.add_command(controller)

from app.local_run import run as local_run  # noqa: E402 - needs the group defined above

cli.add_command(local_run)
