"""``cirrus worker run``, ``pause`` and ``resume``."""

from __future__ import annotations

import asyncio
import sys
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import click

from adapters.config import WorkerConfig
from adapters.host.child_watcher import watch_children_with_pidfds
from adapters.logging import configure_logging, shutdown_logging, terminal_log_console
from adapters.telemetry.health import LISTEN_KEY, HealthServer, parse_listen_address
from adapters.telemetry.setup import Telemetry, setup_telemetry
from app.version import version
from app.worker.leftovers import cancel_quietly, remove_container_leftovers
from app.worker.pause import PauseFailed, StatusChange, set_disabled, wait_until_idle
from app.worker.signals import SignalLadder, install_signal_handlers
from app.worker.state import WorkerSnapshot
from app.worker.vm_factories import remove_vm_leftovers
from app.worker_options import exit_for_config_error, load_config_or_exit, worker_options
from domain.errors import ConfigError
from domain.telemetry import worker_ready

if TYPE_CHECKING:
    from app.status_view import StatusView
    from app.worker.container import WorkerContainer

FAILURE_EXIT_CODE = 1


def _configure_logging(config: WorkerConfig) -> None:
    log = config.log
    configure_logging(
        log.level, log.file, log.rotate_size_bytes, log.max_rotations, secrets=config.secrets()
    )


def snapshot_ready(snapshot: WorkerSnapshot) -> bool:
    """``/readyz``: every upstream registered and polled within 3 intervals of the snapshot."""
    return worker_ready(snapshot.upstreams, snapshot.taken_at)


def live_status_wanted(config: WorkerConfig) -> bool:
    """Whether ``worker run`` draws its live status view: stderr is a terminal, no log file."""
    return config.log.file is None and sys.stderr.isatty()


async def run_worker(
    container: WorkerContainer,
    telemetry: Telemetry | None = None,
    listen: tuple[str, int] | None = None,
    status: StatusView | None = None,
) -> int:
    """Run the worker of ``container`` with signal handling; return the exit code.

    ``telemetry`` is shut down (pending exports flushed, bounded) when the worker stops; with
    ``listen``, the probe and metrics server runs on that address meanwhile; ``status`` shows
    the worker's snapshot about once a second until it stops (its last picture stays).
    """
    watch_children_with_pidfds()  # before the first script starts
    async with AsyncExitStack() as stack:
        if telemetry is not None:
            # Registered first, so it runs last: after the worker's final reports.
            stack.push_async_callback(telemetry.aclose)
        for client in container.clients():
            stack.push_async_callback(client.aclose)
        worker = container.worker()
        # Before anything a caller could see (the probe server): a signal is never fatal.
        remove = install_signal_handlers(asyncio.get_running_loop(), SignalLadder(worker))
        stack.callback(remove)
        if listen is not None:
            server = HealthServer(
                *listen,
                ready=lambda: snapshot_ready(worker.snapshot()),
                metrics_text=telemetry.prometheus_text if telemetry is not None else None,
            )
            try:
                await server.start()
            except OSError as error:
                # In use, or not an address of this host: the flag is wrong, not the worker.
                where = f"{listen[0]}:{listen[1]}"
                raise ConfigError(LISTEN_KEY, f"cannot listen on {where}: {error}") from error
            stack.push_async_callback(server.close)
        # Beside the worker, not before it: a slow or hung engine must not delay polling.
        leftovers = asyncio.create_task(
            remove_container_leftovers(container.policy(), container.leftover_remover())
        )
        stack.push_async_callback(cancel_quietly, leftovers)
        if status is not None:
            from app.status_view import show_until_cancelled, watch_pauses

            status.start()
            stack.callback(status.stop)
            # Registered after ``stop``, so it is cancelled before the view stops.
            refresh = asyncio.create_task(show_until_cancelled(status, worker.snapshot))
            stack.push_async_callback(cancel_quietly, refresh)
            pauses = asyncio.create_task(watch_pauses(status, container.clients()))
            stack.push_async_callback(cancel_quietly, pauses)
        # Before any VM of ours exists: the standby and tasks start with worker.run().
        await remove_vm_leftovers(container.vm_instances())
        code: int = await worker.run()
        return code


def _listen_address_or_exit(listen: str | None, public: bool) -> tuple[str, int] | None:
    if listen is None:
        if public:
            exit_for_config_error(ConfigError(LISTEN_KEY, "--listen-public needs --listen"))
        return None
    try:
        return parse_listen_address(listen, allow_public=public)
    except ConfigError as error:
        exit_for_config_error(error)


@click.command()
@worker_options
@click.option("--ephemeral", is_flag=True, help="Run one task, report it, exit.")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve /healthz, /readyz and /metrics here (loopback only without --listen-public).",
)
@click.option(
    "--listen-public",
    is_flag=True,
    help="Allow --listen on a non-loopback address (the probes and metrics become public).",
)
def run(ephemeral: bool, listen: str | None, listen_public: bool, **options: Any) -> None:
    """Register with the controller(s), poll for tasks and run them until stopped."""
    address = _listen_address_or_exit(listen, listen_public)
    config = load_config_or_exit(**options)
    _configure_logging(config)
    # Imported here, after the configuration is known to be valid.
    from app.worker.container import WorkerContainer

    try:
        telemetry = setup_telemetry(version(), prometheus=address is not None)
        container = WorkerContainer(
            config=config,
            ephemeral=ephemeral,
            metrics=telemetry.metrics,
            tracing=telemetry.tracing,
        )
        code = asyncio.run(run_worker(container, telemetry, address, _status_view(config)))
    except ConfigError as error:
        exit_for_config_error(error)
    finally:
        shutdown_logging()
    sys.exit(code)


def _status_view(config: WorkerConfig) -> StatusView | None:
    if not live_status_wanted(config):
        # Off a terminal the log lines say everything; no view, and nothing more imported.
        return None
    from app.status_view import StatusView

    # The console the log records go to: they are printed above the live view, not into it.
    return StatusView(console=terminal_log_console())


async def _pause(config: WorkerConfig, disabled: bool, wait: bool) -> StatusChange:
    from app.worker.container import build_clients

    async with AsyncExitStack() as stack:
        clients = build_clients(config)
        for client in clients:
            stack.push_async_callback(client.aclose)
        change = await set_disabled(clients, disabled)
        if wait:
            # Only where the worker is known: elsewhere there is nothing to wait for.
            await wait_until_idle([c for c in clients if c.endpoint in change.changed])
        return change


def _report_status_change(name: str, disabled: bool, change: StatusChange) -> None:
    """One line per upstream: where the worker was paused/resumed, where it is unknown."""
    done = "paused" if disabled else "resumed"
    for endpoint in change.changed:
        click.echo(f"worker {name!r} {done} on {endpoint}")
    for endpoint in change.unregistered:
        click.echo(
            f"cirrus: worker {name!r} is not registered on {endpoint}: nothing {done} there",
            err=True,
        )
    if not change.changed:
        click.echo(
            f"cirrus: no worker was {done}; name the worker with --name NAME or -f ITS-CONFIG "
            "(the name defaults to this host's name)",
            err=True,
        )


def _set_disabled_or_exit(options: dict[str, Any], disabled: bool, wait: bool) -> None:
    config = load_config_or_exit(**options)
    _configure_logging(config)
    try:
        change = asyncio.run(_pause(config, disabled, wait))
    except PauseFailed as error:
        click.echo(f"cirrus: {error}", err=True)
        sys.exit(FAILURE_EXIT_CODE)
    finally:
        shutdown_logging()
    _report_status_change(config.name, disabled, change)
    if not change.changed:
        sys.exit(FAILURE_EXIT_CODE)


@click.command()
@worker_options
@click.option("--wait", is_flag=True, help="Wait until the worker runs no task any more.")
def pause(wait: bool, **options: Any) -> None:
    """Disable the worker: the controller assigns it no new task."""
    _set_disabled_or_exit(options, True, wait)


@click.command()
@worker_options
def resume(**options: Any) -> None:
    """Enable the worker again."""
    _set_disabled_or_exit(options, False, False)
