"""The ``cirrus`` command line: entry point and command groups."""

from __future__ import annotations

import click

from app.version import version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), "--version", prog_name="cirrus", message="%(prog)s %(version)s")
def cli() -> None:
    """Self-hosted Cirrus CI: persistent worker, controller and local runs."""


@cli.group()
def worker() -> None:
    """Run, pause, resume or validate a persistent worker."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="cirrus")
