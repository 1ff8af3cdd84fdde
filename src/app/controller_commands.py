"""``cirrus controller``: the click commands, thin. ``run`` reads the flags and the file into
``ControllerSettings`` (``app.controller.settings``) and serves them
(``app.controller.run_controller``, parts from ``app.controller.container``); ``rotate-tokens``
replaces the generated tokens (``app.controller.token_rotation``). Also
``OneLineUsageCommand``, which every command group of the CLI uses.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
from typing import NoReturn

import click

from adapters.logging import configure_logging, shutdown_logging
from app.controller.config_file import read_controller_file
from app.controller.run_controller import check_controller, serve_controller
from app.controller.server import DEFAULT_POLL_INTERVAL_SECONDS
from app.controller.settings import (
    DEFAULT_LISTEN,
    ControllerFlags,
    controller_settings,
    database_url,
)
from app.controller.snapshots_api import DEFAULT_SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_BYTES_KEY
from app.controller.task_logs import DEFAULT_LOG_QUOTA_BYTES
from app.controller.token_rotation import TOKEN_KEYS, check_rotation, rotate
from app.controller_tokens import ControllerSetupError
from domain.store import StoreError

USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1


def _fail(message: str, code: int) -> NoReturn:
    click.echo("cirrus: " + " ".join(message.split()), err=True)
    sys.exit(code)


class OneLineUsageCommand(click.Command):
    """A command whose usage errors print one line (``Error: …``) and exit with code 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does; drop the usage text from any usage error."""
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            if error.ctx is None:
                raise
            raise click.UsageError(" ".join(error.format_message().split())) from None


@click.group()
def controller() -> None:
    """Run the controller that workers poll and users submit builds to."""


@controller.command(cls=OneLineUsageCommand)
@click.option("-f", "--file", "file", metavar="FILE", help="YAML configuration file.")
@click.option("--listen", metavar="HOST:PORT", help=f"Address to serve on [{DEFAULT_LISTEN}].")
@click.option(
    "--database",
    metavar="URL",
    help="sqlite:///PATH, sqlite:///:memory: or postgresql://… "
    "[a SQLite file in the user's data directory].",
)
@click.option("--registration-token", metavar="TOKEN", help="Token workers register with.")
@click.option("--admin-token", metavar="TOKEN", help="Bearer token of the HTTP API.")
@click.option(
    "--check",
    is_flag=True,
    help="Check the configuration, the listen address and the database (migrating an "
    "existing one; a missing SQLite file is not created), print a summary and exit.",
)
@click.option(
    "--worker-offline-after",
    # A held poll is silence of up to one interval: a shorter window would lose idle workers.
    type=click.FloatRange(min=DEFAULT_POLL_INTERVAL_SECONDS + 1),
    metavar="SECONDS",
    help="How long a worker may stay silent before its tasks are failed or requeued "
    "[3 poll intervals + 30 s]; counted afresh after an outage of the controller or database.",
)
@click.option(
    "--log-quota",
    type=click.IntRange(min=1),
    default=DEFAULT_LOG_QUOTA_BYTES,
    show_default=True,
    metavar="BYTES",
    help="Log bytes one task may keep, all its commands together; the rest is dropped.",
)
@click.option(
    "--grpc-listen",
    metavar="HOST:PORT",
    help="Also serve gRPC here, for the original Go `cirrus worker run` and its agent "
    "[the file's grpc.listen, else off].",
)
@click.option(
    "--snapshot-max-bytes",
    type=click.IntRange(min=1),
    metavar="BYTES",
    help="Largest snapshot (.tar.gz of a working tree) a user may upload "
    f"[the file's {SNAPSHOT_MAX_BYTES_KEY}, else {DEFAULT_SNAPSHOT_MAX_BYTES}].",
)
def run(
    file: str | None,
    listen: str | None,
    database: str | None,
    registration_token: str | None,
    admin_token: str | None,
    check: bool,
    worker_offline_after: float | None,
    log_quota: int,
    snapshot_max_bytes: int | None,
    grpc_listen: str | None,
) -> None:
    """Serve the worker protocol and the HTTP API until SIGTERM or SIGINT."""
    configure_logging("info", None, None, 0, console_rich=False)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: what a controller that does not
    # stop (or answer) is waiting for, without stopping it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    flags = ControllerFlags(
        listen=listen,
        database=database,
        registration_token=registration_token,
        admin_token=admin_token,
        worker_offline_after=worker_offline_after,
        log_quota=log_quota,
        snapshot_max_bytes=snapshot_max_bytes,
        grpc_listen=grpc_listen,
    )
    try:
        settings = controller_settings(flags, read_controller_file(file), os.environ)
        code = asyncio.run((check_controller if check else serve_controller)(settings))
    except ControllerSetupError as error:
        _fail(str(error), USAGE_EXIT_CODE)
    except StoreError as error:
        _fail(f"--database: {error}", FAILURE_EXIT_CODE)
    finally:
        shutdown_logging()
    sys.exit(code)


@controller.command("rotate-tokens", cls=OneLineUsageCommand)
@click.option("-f", "--file", "file", metavar="FILE", help="The controller's YAML configuration.")
@click.option(
    "--database",
    metavar="URL",
    help="The controller's database [the file's database, else the default SQLite file].",
)
@click.option("--registration", is_flag=True, help="Rotate the registration token only.")
@click.option("--admin", is_flag=True, help="Rotate the admin token only.")
def rotate_tokens(file: str | None, database: str | None, registration: bool, admin: bool) -> None:
    """Replace the generated tokens by new ones, printed once (restart the controller)."""
    which = tuple(
        key
        for key, chosen in zip(TOKEN_KEYS, (registration, admin), strict=True)
        if chosen or not (registration or admin)
    )
    try:
        config = read_controller_file(file)
        url = database_url(database or config.database, os.environ)
        check_rotation(url, which, config)
        asyncio.run(rotate(url, which))
    except ControllerSetupError as error:
        _fail(str(error), USAGE_EXIT_CODE)
    except StoreError as error:
        _fail(f"--database: {error}", FAILURE_EXIT_CODE)
    click.echo(
        "the database holds only the new tokens' hashes; restart the controller (every one "
        "sharing this database) to serve them, and give the new tokens to workers and users",
        err=True,
    )
