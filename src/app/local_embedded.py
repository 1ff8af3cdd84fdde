"""The embedded controller and worker of ``cirrus run``, in this process's event loop.

The controller app (temporary SQLite database, generated tokens) is served by uvicorn on a
free port of 127.0.0.1 and places every task on this machine (``LocalInstances``); the worker
from ``WorkerContainer`` polls it with a policy that lets the user's own build use the local
podman or docker. On leaving, the worker is drained (every report delivered), then the server
stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import platform
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dependency_injector import providers

from adapters.blobs.filesystem import FilesystemBlobStore
from adapters.blobs.signing import BlobSigner
from adapters.cirrus_config.starlark import LocalSourceFiles
from adapters.config import WorkerConfig, WorkerFlags, load_worker_config
from adapters.container.instance import ContainerInstanceFactory
from adapters.host.instance import HostInstanceFactory
from adapters.http_server.listen import ListenAddress, bind_socket
from adapters.http_server.serving import ControllerServer, controller_server
from adapters.storage.sqlite_store import SqliteStore
from app.controller.server import create_app
from app.local_run_options import LocalRunError
from app.worker.clock import SystemClock
from app.worker.container import WorkerContainer
from app.worker.poll_loop import Worker
from domain.build import BuildSpec
from domain.cirrus_config.context import InstanceResolver, WorkerRequirement
from domain.cirrus_config.instances import MappedInstances
from domain.cirrus_config.nodes import Node
from domain.identity import go_arch, go_os
from domain.isolation import ContainerIsolation, NoneIsolation
from domain.policy import ContainerPolicy, SecurityPolicy

log = logging.getLogger("cirrus.run")

LOCAL_POLL_INTERVAL_SECONDS = 2
STARTUP_TIMEOUT_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 60.0


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
    """The embedded worker's policy: the file's, with ``container`` allowed for any image and
    volume."""
    # The user runs their own file here, as the original ``cirrus run`` ran ``container:`` tasks
    # with docker or podman; a worker file written for a shared pool must not leave them waiting
    # for a worker that will never come (nor refuse the project mount of ``--dirty``).
    allowed = policy.allowed_isolations
    if allowed is None:
        return policy  # no ``allowed-isolations``: every isolation and image is allowed already
    container = ContainerPolicy(allowed_images=(), allowed_volumes=None)
    return SecurityPolicy(dataclasses.replace(allowed, container=container))


class LocalInstances:
    """The shipped instance mapping, with every task placed on this machine's one worker.

    A ``container:`` task asks for ``os=linux, arch=amd64``; here it runs in the local podman or
    docker whatever the host is (a Mac, an arm64 laptop), as with the original ``cirrus run``.
    ``os``/``arch`` become the host's, and other labels (``persistent_worker``'s) are dropped.
    A VM keeps the ``os``/``arch`` its image needs: a ``macos_instance`` cannot run on Linux,
    and its task waits with a reason that ``cirrus run`` reports, instead of failing in a
    missing ``tart``.
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
        if not isinstance(requirement.isolation, ContainerIsolation | NoneIsolation):
            labels.update((key, requirement.labels[key]) for key in ("os", "arch") if key in labels)
        return dataclasses.replace(requirement, labels=labels)


def host_labels() -> dict[str, str]:
    """The ``os`` and ``arch`` labels the embedded worker reports."""
    return {"os": go_os(sys.platform), "arch": go_arch(platform.machine())}


@contextlib.asynccontextmanager
async def embedded_controller(
    database_dir: Path,
    project_dir: Path | None = None,
    build_filter: Callable[[BuildSpec], BuildSpec] | None = None,
    blobs_dir: Path | None = None,
) -> AsyncIterator[EmbeddedController]:
    """Serve a controller on a free port of 127.0.0.1 until the block ends.

    A ``.cirrus.star`` it reads may use ``http`` (the user runs their own file on their own
    machine, as with the original ``cirrus run``) and its ``fs`` module reads ``project_dir``.
    ``build_filter`` changes each submitted build before it is stored (``cirrus run TASK``).
    Caches and artifacts go to a filesystem blob store in ``blobs_dir`` (default: beside the
    database), its URLs signed with a key of this run only.
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
            build_filter=build_filter,
            blobs=FilesystemBlobStore(blobs_dir or database_dir / "blobs", BlobSigner.generate()),
        )
        server = controller_server(app, app.state.controller.release_polls, log_level="warning")
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
async def embedded_worker(
    config: WorkerConfig, instances_dir: Path, container_backend: str | None = None
) -> AsyncIterator[Worker]:
    """Run a worker until the block ends; then drain it and close its clients.

    ``container_backend`` (``docker``/``podman``) is the engine of container tasks; None lets
    the worker choose (``$CIRRUS_CONTAINER_BACKEND``, else podman, else docker).
    """
    container = WorkerContainer(config=config, ephemeral=False)
    container.host_instances.override(
        providers.Singleton(HostInstanceFactory, base_dir=str(instances_dir))
    )
    if container_backend is not None:
        container.container_instances.override(
            providers.Singleton(
                ContainerInstanceFactory,
                engine=container_backend,
                grace_seconds=container.grace_seconds,
            )
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
