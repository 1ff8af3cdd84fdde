"""The flags shared by ``cirrus worker run/pause/resume/validate`` and loading the configuration.

Environment variables are read by the loader, not by click, so that the precedence flag >
environment > file > default is decided in one place.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

import click

from adapters.config import WorkerConfig, WorkerFlags, load_worker_config
from domain.errors import ConfigError

CONFIG_ERROR_EXIT_CODE = 2

F = TypeVar("F", bound=Callable[..., Any])


def worker_options(command: F) -> F:
    """Add the shared flags: ``-f/--file``, ``--name``, ``--token``, ``--labels``, ``--resources``,
    ``--rpc-endpoint``."""
    decorators = [
        click.option("-f", "--file", "file", metavar="FILE", help="YAML configuration file."),
        click.option("--name", metavar="NAME", help="Worker name (default: the host name)."),
        click.option("--token", metavar="TOKEN", help="Pool registration token."),
        click.option(
            "--labels",
            metavar="K=V[,K=V]",
            multiple=True,
            help="Extra labels; repeatable.",
        ),
        click.option(
            "--resources",
            metavar="K=V[,K=V]",
            multiple=True,
            help="Resources the worker offers (numbers); repeatable.",
        ),
        click.option(
            "--rpc-endpoint",
            metavar="URL",
            help="Controller URL (default: http://127.0.0.1:8080).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def config_error_line(error: ConfigError) -> str:
    """Return the one-line message printed for a configuration error."""
    text = f"{error.key}: {error.message}" if error.key else error.message
    return "cirrus: configuration error: " + " ".join(text.split())


def exit_for_config_error(error: ConfigError) -> NoReturn:
    """Print the error as one line on stderr and exit with code 2."""
    click.echo(config_error_line(error), err=True)
    sys.exit(CONFIG_ERROR_EXIT_CODE)


def load_config_or_exit(
    *,
    file: str | None = None,
    name: str | None = None,
    token: str | None = None,
    labels: Iterable[str] = (),
    resources: Iterable[str] = (),
    rpc_endpoint: str | None = None,
    **other_options: object,
) -> WorkerConfig:
    """Load the configuration from the shared flags, environment and file, or exit 2.

    Options of the calling command that are not worker options (``--ephemeral``…) are ignored,
    so a command can pass all its keyword arguments.
    """
    flags = WorkerFlags(
        file=file,
        name=name,
        token=token,
        labels=tuple(labels),
        resources=tuple(resources),
        rpc_endpoint=rpc_endpoint,
    )
    try:
        return load_worker_config(flags, os.environ, socket.gethostname())
    except ConfigError as error:
        exit_for_config_error(error)
