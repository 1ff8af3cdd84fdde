"""``cirrus worker run``, ``pause`` and ``resume``."""

from __future__ import annotations

import asyncio
import sys
from contextlib import AsyncExitStack
from typing import Any

import click

from adapters.config import WorkerConfig
from adapters.logging import configure_logging, shutdown_logging
from app.worker.container import WorkerContainer, build_clients
from app.worker.pause import PauseFailed, set_disabled, wait_until_idle
from app.worker.signals import SignalLadder, install_signal_handlers
from app.worker_options import load_config_or_exit, worker_options

FAILURE_EXIT_CODE = 1


def _configure_logging(config: WorkerConfig) -> None:
    log = config.log
    configure_logging(
        log.level, log.file, log.rotate_size_bytes, log.max_rotations, secrets=config.secrets()
    )


async def run_worker(container: WorkerContainer) -> int:
    """Run the worker of ``container`` with signal handling; return the exit code."""
    async with AsyncExitStack() as stack:
        for client in container.clients():
            stack.push_async_callback(client.aclose)
        worker = container.worker()
        remove = install_signal_handlers(asyncio.get_running_loop(), SignalLadder(worker))
        stack.callback(remove)
        code: int = await worker.run()
        return code


@click.command()
@worker_options
@click.option("--ephemeral", is_flag=True, help="Run one task, report it, exit.")
def run(ephemeral: bool, **options: Any) -> None:
    """Register with the controller(s), poll for tasks and run them until stopped."""
    config = load_config_or_exit(**options)
    _configure_logging(config)
    container = WorkerContainer(config=config, ephemeral=ephemeral)
    try:
        code = asyncio.run(run_worker(container))
    finally:
        shutdown_logging()
    sys.exit(code)


async def _pause(config: WorkerConfig, disabled: bool, wait: bool) -> None:
    async with AsyncExitStack() as stack:
        clients = build_clients(config)
        for client in clients:
            stack.push_async_callback(client.aclose)
        await set_disabled(clients, disabled)
        if wait:
            await wait_until_idle(clients)


def _set_disabled_or_exit(options: dict[str, Any], disabled: bool, wait: bool) -> None:
    config = load_config_or_exit(**options)
    _configure_logging(config)
    try:
        asyncio.run(_pause(config, disabled, wait))
    except PauseFailed as error:
        click.echo(f"cirrus: {error}", err=True)
        sys.exit(FAILURE_EXIT_CODE)
    finally:
        shutdown_logging()


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
