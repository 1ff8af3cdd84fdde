"""The controller's outward parts, opened before it serves: the store (migrated), the tokens
it serves, the secret key and the blob store, all on the database of ``--database``.

Opening is asynchronous, so the ``ControllerContainer`` does not do it (dependency-injector's
async resources defeat mypy): ``open_outward`` opens each part into an ``AsyncExitStack`` and
hands it to the container, whose providers a test overrides with fakes instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.blobs.config import BlobSettings, default_directory_of, open_blob_store
from adapters.grpc_server.server import GrpcBindError, GrpcServer
from adapters.http_server.listen import bind_socket, bound_address
from adapters.secrets import SecretCipher, load_secret_cipher
from adapters.storage.open_store import MEMORY, DatabaseKind, DatabaseUrl
from adapters.storage.open_store import open_store as open_database
from adapters.storage.postgres_wakeups import PostgresWakeups
from adapters.wire import cirrus_ci_service_pb2
from app.controller.long_poll import QueueWatch
from app.controller.settings import ControllerSettings, check_database_url, database_url
from app.controller_tokens import (
    ADMIN,
    REGISTRATION,
    ControllerSetupError,
    ServedToken,
    resolve_token,
)
from app.worker.clock import SystemClock
from domain.blobs import BlobStore
from domain.errors import CirrusError, ConfigError
from domain.store import ControllerStore
from domain.wakeups import WakeRelay


@dataclass(frozen=True, slots=True)
class ServedTokens:
    """The registration and admin tokens this start serves."""

    registration: ServedToken
    admin: ServedToken

    def new_ones(self) -> list[tuple[str, str]]:
        """``(label, token)`` of each token this start generated (printed once)."""
        pairs = ((REGISTRATION, self.registration), (ADMIN, self.admin))
        return [(slot.label, served.new_token) for slot, served in pairs if served.new_token]


async def open_store(url: str | None, environ: Mapping[str, str]) -> ControllerStore:
    """Open (creating and migrating it if needed) the store of ``--database``.

    A bad URL, an uncreatable directory or an unopenable SQLite file is a
    ``ControllerSetupError`` (exit 2); a PostgreSQL database that cannot be reached or opened
    raises ``StoreError`` (exit 1).
    """
    checked = check_database_url(database_url(url, environ))
    try:
        return await open_database(database_url(url, environ), SystemClock())
    except ConfigError as error:
        raise ControllerSetupError("--database", error.message) from None
    except (CirrusError, OSError, ValueError) as error:
        if checked.kind is DatabaseKind.POSTGRESQL:
            raise
        raise ControllerSetupError("--database", f"cannot open {checked.target}: {error}") from None


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file that does not exist yet, else None."""
    checked = check_database_url(url)
    if checked.kind is not DatabaseKind.SQLITE or checked.target == MEMORY:
        return None
    return None if Path(checked.target).exists() else checked.target


async def open_controller_blobs(
    settings: BlobSettings, url: str, store: ControllerStore
) -> BlobStore:
    """Open the blob store of ``blobs:`` (default: a directory beside the SQLite database)."""
    checked = check_database_url(url)
    target = checked.target if checked.kind is DatabaseKind.SQLITE else None
    try:
        return await open_blob_store(settings, default_directory_of(target, os.environ), store)
    except ConfigError as error:
        raise ControllerSetupError(error.key, error.message) from None


def wake_relay(url: DatabaseUrl, store: ControllerStore) -> WakeRelay:
    """Return how held polls learn of work queued by other controller processes."""
    if url.kind is DatabaseKind.POSTGRESQL:
        return PostgresWakeups(url.target)
    return QueueWatch(store)


def listen_socket(settings: ControllerSettings) -> socket.socket:
    """Bind the controller's listening socket; an address in use names ``--listen``."""
    try:
        return bind_socket(settings.address)
    except ConfigError as error:
        raise ControllerSetupError(error.key, error.message) from None


@dataclass(frozen=True, slots=True)
class OutwardParts:
    """What ``open_outward`` opened: the container's outward providers take these."""

    socket: socket.socket
    store: ControllerStore
    tokens: ServedTokens
    secrets: SecretCipher
    blobs: BlobStore
    listen_url: str


async def open_outward(
    settings: ControllerSettings, stack: contextlib.AsyncExitStack
) -> OutwardParts:
    """Bind the socket, open the store and read its tokens, key and blobs; ``stack`` closes
    the socket and the store."""
    sock = listen_socket(settings)
    stack.callback(sock.close)
    store = await open_store(settings.database_url, os.environ)
    stack.push_async_callback(store.aclose)
    tokens = ServedTokens(
        await resolve_token(store, settings.registration_token, REGISTRATION),
        await resolve_token(store, settings.admin_token, ADMIN),
    )
    return OutwardParts(
        socket=sock,
        store=store,
        tokens=tokens,
        secrets=await load_secret_cipher(store),
        blobs=await open_controller_blobs(settings.limits.blobs, settings.database_url, store),
        listen_url=bound_address(settings.address, sock).url,
    )


GRPC_STOP_GRACE_SECONDS = 5.0
"""How long gRPC calls in flight may take to end when the controller stops."""


@dataclass(frozen=True, slots=True)
class GrpcListener:
    """A running gRPC server and where it listens."""

    server: GrpcServer
    host: str
    port: int

    @property
    def address(self) -> str:
        """``HOST:PORT`` as a Go worker's ``--rpc-endpoint http://HOST:PORT`` takes it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving (calls in flight get ``GRPC_STOP_GRACE_SECONDS``)."""
        await self.server.stop(GRPC_STOP_GRACE_SECONDS)


async def start_grpc(
    app: Any, address: tuple[str, int] | None, key: str = "--grpc-listen"
) -> GrpcListener | None:
    """Serve the gRPC services of ``app`` (from ``create_app``) on ``address`` (None: off);
    a port that cannot be bound is a ``ControllerSetupError`` naming ``key``."""
    if address is None:
        return None
    host, port = address
    server = GrpcServer(app.state.grpc, cirrus_ci_service_pb2.DESCRIPTOR)
    try:
        bound = await server.start(host, port)
    except GrpcBindError as error:
        await server.stop(0)
        raise ControllerSetupError(key, str(error)) from None
    return GrpcListener(server, host, bound)
