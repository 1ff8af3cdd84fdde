"""``cirrus run``: run a ``.cirrus.yml`` here, with an embedded controller and worker.

One process, one event loop: the controller app (temporary SQLite database, generated tokens)
is served by uvicorn on a free port of 127.0.0.1, a worker from ``WorkerContainer`` polls it,
the build is submitted and followed like ``cirrus build submit --follow``. Afterwards the worker
is drained (every report delivered) and the server stopped.

Exit codes: 0 the build completed; 1 it did not; 2 the ``.cirrus.yml`` (the controller's 400
line) or the worker file is wrong. The first SIGINT/SIGTERM cancels the running tasks (the
build ends aborted), a second one exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import platform
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import click
from dependency_injector import providers
from rich.console import Console

from adapters.cirrus_config.starlark import LocalSourceFiles
from adapters.config import WorkerConfig, WorkerFlags, load_worker_config
from adapters.controller_api import ControllerApiClient, ControllerApiError, ControllerRefused
from adapters.host.instance import HostInstanceFactory
from adapters.logging import configure_logging, shutdown_logging
from adapters.storage.sqlite_store import SqliteStore
from app.build_view import BuildView, follow_build, submitted_lines
from app.controller.server import create_app
from app.controller_commands import (
    ControllerServer,
    ListenAddress,
    OneLineUsageCommand,
    bind_socket,
    controller_server,
)
from app.user_commands import read_config, read_starlark
from app.worker.clock import SystemClock
from app.worker.container import WorkerContainer
from app.worker.poll_loop import Worker
from app.worker_options import config_error_line
from domain.cirrus_config.context import InstanceResolver, WorkerRequirement
from domain.cirrus_config.instances import MappedInstances
from domain.cirrus_config.nodes import Node
from domain.errors import ConfigError
from domain.identity import go_arch, go_os
from domain.policy import ContainerPolicy, SecurityPolicy

log = logging.getLogger("cirrus.run")

FAILURE_EXIT_CODE = 1
USAGE_EXIT_CODE = 2
LOCAL_POLL_INTERVAL_SECONDS = 2
STARTUP_TIMEOUT_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 60.0


class LocalRunError(Exception):
    """``cirrus run`` cannot go on; ``exit_code`` says why (2: bad input, 1: failure)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class EmbeddedController:
    """A running embedded controller: where it listens and its tokens."""

    url: str
    registration_token: str
    admin_token: str
    server: ControllerServer


def local_worker_config(
    worker_file: str | None, controller: EmbeddedController, environ: Mapping[str, str]
) -> WorkerConfig:
    """The worker's configuration: ``-f`` (or defaults) pointed at the embedded controller."""
    flags = WorkerFlags(
        file=worker_file, token=controller.registration_token, rpc_endpoint=controller.url
    )
    config = load_worker_config(flags, environ, socket.gethostname())
    return dataclasses.replace(config, security=local_security(config.security))


def local_security(policy: SecurityPolicy) -> SecurityPolicy:
    """The embedded worker's policy: the file's, with ``container`` allowed for any image."""
    # The user runs their own file here, as the original ``cirrus run`` ran ``container:`` tasks
    # with docker or podman; a worker file written for a shared pool must not leave them waiting
    # for a worker that will never come.
    allowed = policy.allowed_isolations
    if allowed is None:
        return policy  # no ``allowed-isolations``: every isolation and image is allowed already
    container = dataclasses.replace(allowed.container or ContainerPolicy(), allowed_images=())
    return SecurityPolicy(dataclasses.replace(allowed, container=container))


class LocalInstances:
    """The shipped instance mapping, with every task placed on this machine's one worker.

    A ``container:`` task asks for ``os=linux, arch=amd64``; here it runs in the local podman or
    docker whatever the host is (a Mac, an arm64 laptop), as with the original ``cirrus run``.
    ``os``/``arch`` become the host's, and other labels (``persistent_worker``'s) are dropped.
    """

    def __init__(self, inner: InstanceResolver, host: Mapping[str, str]) -> None:
        self._inner = inner
        self._host = dict(host)

    def kinds(self) -> frozenset[str]:
        """Return the instance keys of the shipped mapping."""
        return self._inner.kinds()

    def resolve(self, kind: str, node: Node, environment: Mapping[str, str]) -> WorkerRequirement:
        """Return the shipped requirement with the labels of this host."""
        requirement = self._inner.resolve(kind, node, environment)
        labels = {key: self._host[key] for key in requirement.labels if key in self._host}
        return dataclasses.replace(requirement, labels=labels)


def host_labels() -> dict[str, str]:
    """The ``os`` and ``arch`` labels the embedded worker reports."""
    return {"os": go_os(sys.platform), "arch": go_arch(platform.machine())}


@contextlib.asynccontextmanager
async def embedded_controller(
    database_dir: Path, project_dir: Path | None = None
) -> AsyncIterator[EmbeddedController]:
    """Serve a controller on a free port of 127.0.0.1 until the block ends.

    A ``.cirrus.star`` it reads may use ``http`` (the user runs their own file on their own
    machine, as with the original ``cirrus run``) and its ``fs`` module reads ``project_dir``.
    """
    store = await SqliteStore.open(database_dir / "controller.db", SystemClock())
    sock = bind_socket(ListenAddress("127.0.0.1", 0))
    try:
        registration, admin = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        app = create_app(
            store,
            registration_token=registration,
            admin_token=admin,
            poll_interval_seconds=LOCAL_POLL_INTERVAL_SECONDS,
            instances=LocalInstances(MappedInstances(), host_labels()),
            starlark_http=True,
            starlark_files=None if project_dir is None else LocalSourceFiles(project_dir),
        )
        server = controller_server(app, log_level="warning")
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                while not server.started:
                    if serving.done():
                        raise LocalRunError("the embedded controller did not start", 1)
                    await asyncio.sleep(0.02)
            port = sock.getsockname()[1]
            yield EmbeddedController(f"http://127.0.0.1:{port}", registration, admin, server)
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await serving
    finally:
        sock.close()
        await store.aclose()


@contextlib.asynccontextmanager
async def embedded_worker(config: WorkerConfig, instances_dir: Path) -> AsyncIterator[Worker]:
    """Run a worker until the block ends; then drain it and close its clients."""
    container = WorkerContainer(config=config, ephemeral=False)
    container.host_instances.override(
        providers.Singleton(HostInstanceFactory, base_dir=str(instances_dir))
    )
    worker: Worker = container.worker()
    running = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.drain()
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_SECONDS):
                await running
        except TimeoutError:
            log.warning("the worker did not drain in %.0f s; cancelling", DRAIN_TIMEOUT_SECONDS)
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        for client in container.clients():
            await client.aclose()


async def run_locally(
    config_text: str,
    worker_file: str | None,
    view: BuildView,
    environ: Mapping[str, str],
    starlark: str = "",
    project_dir: Path | None = None,
) -> int:
    """Run one build (a ``.cirrus.yml`` and a ``.cirrus.star`` text) with an embedded
    controller and worker; return the exit code. ``project_dir`` is what the ``.cirrus.star``'s
    ``fs`` module reads."""
    with tempfile.TemporaryDirectory(prefix="cirrus-run-") as temporary:
        base = Path(temporary)
        (base / "instances").mkdir()
        async with embedded_controller(base, project_dir) as controller:
            try:
                worker_config = local_worker_config(worker_file, controller, environ)
            except ConfigError as error:
                raise LocalRunError(config_error_line(error), USAGE_EXIT_CODE) from None
            async with (
                embedded_worker(worker_config, base / "instances") as worker,
                ControllerApiClient(controller.url, controller.admin_token) as client,
            ):
                try:
                    submitted = await client.submit_build(config_text, {}, starlark)
                except ControllerRefused as error:
                    raise LocalRunError(f"cirrus: {error.message}", USAGE_EXIT_CODE) from None
                for line in submitted_lines(submitted):
                    view.line(line)
                with _cancel_on_signal(worker):
                    final = await follow_build(client, submitted.id, view)
                return 0 if final.status == "COMPLETED" else FAILURE_EXIT_CODE


@contextlib.contextmanager
def _cancel_on_signal(worker: Worker) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    count = 0

    def on_signal(signum: int) -> None:
        nonlocal count
        count += 1
        if count == 1:
            click.echo(
                f"cirrus: {signal.Signals(signum).name}: cancelling the build "
                "(again to exit at once)",
                err=True,
            )
            worker.cancel_all()
        else:
            os._exit(128 + signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@click.command(name="run", cls=OneLineUsageCommand)
@click.argument("file", default=".cirrus.yml", metavar="[FILE]")
@click.option(
    "-f",
    "--file",
    "worker_file",
    metavar="WORKER_FILE",
    help=(
        "Worker configuration (default: no labels or resources); container: tasks run in the "
        "local podman or docker whatever its security section says."
    ),
)
def run(file: str, worker_file: str | None) -> None:
    """Run a .cirrus.yml here with an embedded controller and worker; exit 0 iff it completes."""
    starlark = read_starlark(file)
    # As the original, a .cirrus.star alone is a whole configuration.
    config_text = "" if starlark and not Path(file).exists() else read_config(file)
    configure_logging("warning", None, None, 0, console_rich=False)
    view = BuildView(Console(highlight=False))
    try:
        project = Path(file).resolve().parent
        code = asyncio.run(
            run_locally(config_text, worker_file, view, os.environ, starlark, project)
        )
    except LocalRunError as error:
        click.echo(" ".join(str(error).split()), err=True)
        code = error.exit_code
    except ControllerApiError as error:
        click.echo(f"cirrus: {' '.join(str(error).split())}", err=True)
        code = FAILURE_EXIT_CODE
    finally:
        shutdown_logging()
    sys.exit(code)
