"""``cirrus controller run``: the controller (Twirp services and HTTP API) served by uvicorn.

Also the pieces ``cirrus run`` reuses: parsing ``--listen`` and ``--database``, opening the
store, the tokens generated on first start, and ``ControllerServer`` (uvicorn without its own
signal handling, releasing held polls as soon as shutdown begins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
import uvicorn
import yaml

from adapters.config.instance_mapping import SECTION as INSTANCES_SECTION
from adapters.config.instance_mapping import instance_mapping_from
from adapters.logging import configure_logging, shutdown_logging
from adapters.secrets import load_secret_cipher
from adapters.storage.open_store import (
    SQLITE_PREFIX,
    DatabaseKind,
    DatabaseUrl,
    parse_database_url,
    redact,
)
from adapters.storage.open_store import open_store as open_database
from adapters.storage.postgres_wakeups import PostgresWakeups
from adapters.telemetry.controller_instruments import setup_controller_telemetry
from app.controller.long_poll import QueueWatch, WakeRelay
from app.controller.server import DEFAULT_POLL_INTERVAL_SECONDS, ControllerRuntime, create_app
from app.version import version
from app.worker.clock import SystemClock
from domain.cirrus_config.context import InstanceResolver
from domain.cirrus_config.instances import MappedInstances
from domain.errors import CirrusError, ConfigError
from domain.store import (
    ADMIN_TOKEN_KEY,
    REGISTRATION_TOKEN_KEY,
    ControllerStore,
    StoreError,
    hash_token,
)

log = logging.getLogger("cirrus.controller")

DEFAULT_LISTEN = "127.0.0.1:8080"
USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1
GRACEFUL_SHUTDOWN_SECONDS = 10
# A generated token is kept in plain text under these keys (next to its hash), so that a
# restart without the flag can serve the same token; a token given by flag is never stored.
GENERATED_REGISTRATION_TOKEN_KEY = "generated-registration-token"
GENERATED_ADMIN_TOKEN_KEY = "generated-admin-token"
STARLARK_HTTP = "starlark-http"
"""Controller file key: may a ``.cirrus.star`` use the ``http`` module (default false)."""
FILE_KEYS = (
    "listen",
    "database",
    "registration-token",
    "admin-token",
    INSTANCES_SECTION,
    STARLARK_HTTP,
)


class ControllerSetupError(CirrusError):
    """A controller flag, file key or database is unusable; ``key`` names it (exit code 2)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where the controller accepts connections."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The base URL of a controller listening here."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_listen(value: str, key: str = "--listen") -> ListenAddress:
    """Parse ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port_text = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ControllerSetupError(key, f"{value!r} is not HOST:PORT (a port 0-65535)")
    return ListenAddress(host, int(port_text))


def default_database_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/cirrus/controller.db``, else ``~/.local/share/cirrus/controller.db``."""
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "cirrus" / "controller.db"


def database_url(url: str | None, environ: Mapping[str, str]) -> str:
    """Return the ``--database`` URL to open: the given one, else the default SQLite file."""
    if url is not None:
        return url
    return SQLITE_PREFIX + str(default_database_path(environ))


def check_database_url(url: str, key: str = "--database") -> DatabaseUrl:
    """Check a database URL before anything starts; errors name ``key``."""
    try:
        return parse_database_url(url)
    except ConfigError as error:
        raise ControllerSetupError(key, error.message) from None


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


def wake_relay(url: DatabaseUrl, store: ControllerStore) -> WakeRelay:
    """Return how held polls learn of work queued by other controller processes."""
    if url.kind is DatabaseKind.POSTGRESQL:
        return PostgresWakeups(url.target)
    return QueueWatch(store)


async def resolve_token(
    store: ControllerStore, given: str | None, hash_key: str, generated_key: str, flag: str
) -> tuple[str, bool]:
    """Return the token to serve and whether it was generated by this start (print it once).

    A given token replaces the stored one. Without one, the token generated by the first start
    is used again; a database whose token was only ever given by flag needs the flag again.
    """
    if given:
        await store.set_setting(hash_key, hash_token(given))
        await store.set_setting(generated_key, "")
        return given, False
    candidate = secrets.token_urlsafe(24)
    if await store.put_setting_if_absent(generated_key, candidate):
        await store.set_setting(hash_key, hash_token(candidate))
        return candidate, True
    stored = await store.get_setting(generated_key)
    if not stored:
        raise ControllerSetupError(
            flag, "this database's token was given by flag before; give it again"
        )
    return stored, False


def bind_socket(address: ListenAddress) -> socket.socket:
    """Bind a listening TCP socket (port 0: any free port); errors name ``--listen``."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((address.host, address.port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise ControllerSetupError(
            "--listen", f"cannot listen on {address.host}:{address.port}: {reason}"
        ) from None
    return sock


class ControllerServer(uvicorn.Server):
    """uvicorn serving a controller app; the caller routes signals (``should_exit``)."""

    def __init__(self, config: uvicorn.Config, runtime: ControllerRuntime) -> None:
        super().__init__(config)
        self.runtime = runtime

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave signal handling to the caller (uvicorn would re-raise the signal on exit)."""
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Answer held polls first, so that their connections close at once."""
        self.runtime.release_polls()
        await super().shutdown(sockets)
        if not self.force_exit:
            return
        requests = list(self.server_state.tasks)
        if requests:
            log.warning("forced exit: %d request(s) in progress cut short", len(requests))
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
        if not self.lifespan.shutdown_event.is_set():
            # uvicorn skips the app's shutdown on a forced exit, and the lifespan task, left
            # waiting, would be cancelled with a traceback; our shutdown only stops background
            # tasks, so it runs even now.
            await self.lifespan.shutdown()


class _QuietCancellation(logging.Filter):
    """Drop uvicorn's traceback of a request cancelled because the server stops.

    A forced exit (or the end of the graceful period) cancels requests still in progress; that
    is said once, in one line, not as one "Exception in ASGI application" traceback each.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


_QUIET_CANCELLATION = _QuietCancellation()


def controller_server(app: Any, log_level: str = "info") -> ControllerServer:
    """Return a server for an app of ``create_app`` (no access log: workers poll constantly)."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        http="httptools",  # several times faster than h11 at parsing the workers' calls
        log_level=log_level,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    logging.getLogger("uvicorn.error").addFilter(_QUIET_CANCELLATION)  # added once
    return ControllerServer(config, app.state.controller)


def read_controller_file(path: str) -> dict[str, str]:
    """Read ``-f FILE``: a YAML mapping with the keys ``listen``, ``database``,
    ``registration-token`` and ``admin-token`` (all optional strings)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ControllerSetupError(path, f"cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ControllerSetupError(path, f"invalid YAML: {' '.join(str(error).split())}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ControllerSetupError(path, "the configuration must be a mapping of keys to values")
    values: dict[str, str] = {}
    for key, value in document.items():
        if key not in FILE_KEYS:
            raise ControllerSetupError(str(key), f"unknown key (known: {', '.join(FILE_KEYS)})")
        if key == INSTANCES_SECTION:
            continue  # a mapping, read by ``read_instance_mapping``
        if key == STARLARK_HTTP:
            if not isinstance(value, bool):
                raise ControllerSetupError(str(key), "must be true or false")
            values[key] = "true" if value else "false"
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ControllerSetupError(str(key), "must be a string")
        values[key] = str(value)
    return values


def read_instance_mapping(path: str | None) -> InstanceResolver:
    """Return the instance mapping of ``-f FILE``'s ``instances:`` (the shipped one without)."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None
    section = document.get(INSTANCES_SECTION) if isinstance(document, dict) else None
    try:
        return MappedInstances(instance_mapping_from(section))
    except ConfigError as error:
        raise ControllerSetupError(error.key, error.message) from None


def _fail(message: str, code: int) -> NoReturn:
    click.echo("cirrus: " + " ".join(message.split()), err=True)
    sys.exit(code)


async def token_state(
    store: ControllerStore, given: str | None, generated_key: str, flag: str
) -> str:
    """Say, without changing anything, which token ``resolve_token`` would serve.

    Raises the same ``ControllerSetupError`` as ``resolve_token`` for a database whose token
    was only ever given by flag.
    """
    if given:
        return "given"
    stored = await store.get_setting(generated_key)
    if stored is None:
        return "generated and printed on the first start"
    if not stored:
        raise ControllerSetupError(
            flag, "this database's token was given by flag before; give it again"
        )
    return "generated by an earlier start (stored in the database)"


async def _check(
    address: ListenAddress,
    url: str,
    registration_token: str | None,
    admin_token: str | None,
    _instances: InstanceResolver,  # already read and validated
    _starlark_http: bool,
) -> int:
    bind_socket(address).close()  # it is free now; ``run`` binds it again
    store = await open_store(url, os.environ)
    try:
        registration = await token_state(
            store, registration_token, GENERATED_REGISTRATION_TOKEN_KEY, "--registration-token"
        )
        admin = await token_state(store, admin_token, GENERATED_ADMIN_TOKEN_KEY, "--admin-token")
    finally:
        await store.aclose()
    free = "any free port" if address.port == 0 else "free"
    click.echo(f"listen: {address.url} ({free})")
    click.echo(f"database: {redact(url)} (opened, schema up to date)")
    click.echo(f"poll interval: {DEFAULT_POLL_INTERVAL_SECONDS} s")
    click.echo(f"registration token: {registration}")
    click.echo(f"admin token: {admin}")
    click.echo("configuration OK")
    return 0


async def _serve(
    address: ListenAddress,
    url: str,
    registration_token: str | None,
    admin_token: str | None,
    instances: InstanceResolver,
    starlark_http: bool,
) -> int:
    # Signals are routed from the start: a SIGTERM that arrives while the store opens, or just
    # after "listening" is printed, stops the controller cleanly instead of killing it.
    stop = _StopRequests()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.on_signal, signum)
    try:
        return await _open_and_serve(
            address, url, registration_token, admin_token, stop, instances, starlark_http
        )
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


class _StopRequests:
    """SIGTERM/SIGINT seen so far: the first asks the server to stop, the second forces it."""

    def __init__(self) -> None:
        self.count = 0
        self.server: ControllerServer | None = None

    def on_signal(self, signum: int) -> None:
        self.count += 1
        log.warning("%s: shutting down", signal.Signals(signum).name)
        self.apply()

    def attach(self, server: ControllerServer) -> None:
        """Route the signals to ``server``, including those that came before it existed."""
        self.server = server
        self.apply()

    def apply(self) -> None:
        if self.server is None or self.count == 0:
            return
        self.server.should_exit = True
        if self.count > 1:
            self.server.force_exit = True


async def _open_and_serve(
    address: ListenAddress,
    url: str,
    registration_token: str | None,
    admin_token: str | None,
    stop: _StopRequests,
    instances: InstanceResolver,
    starlark_http: bool,
) -> int:
    sock = bind_socket(address)
    try:
        store = await open_store(url, os.environ)
    except BaseException:
        sock.close()
        raise
    metrics = setup_controller_telemetry(version(), prometheus=True, wall_clock=SystemClock().now)
    try:
        registration, new_registration = await resolve_token(
            store,
            registration_token,
            REGISTRATION_TOKEN_KEY,
            GENERATED_REGISTRATION_TOKEN_KEY,
            "--registration-token",
        )
        admin, new_admin = await resolve_token(
            store, admin_token, ADMIN_TOKEN_KEY, GENERATED_ADMIN_TOKEN_KEY, "--admin-token"
        )
        cipher = await load_secret_cipher(store)
        server = controller_server(
            create_app(
                store,
                registration_token=registration,
                admin_token=admin,
                metrics=metrics,
                secrets=cipher,
                instances=instances,
                starlark_http=starlark_http,
            )
        )
        stop.attach(server)
        if new_registration:
            click.echo(f"registration token (for workers' --token): {registration}")
        if new_admin:
            click.echo(f"admin token (for users' --token or CIRRUS_TOKEN): {admin}")
        port = sock.getsockname()[1]
        click.echo(f"controller listening on {ListenAddress(address.host, port).url}")
        sys.stdout.flush()
        waiters = server.runtime.waiters
        waiters.relay_to(wake_relay(check_database_url(url), store))
        relaying = asyncio.create_task(waiters.run_relay())
        try:
            await server.serve(sockets=[sock])
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
        return 0 if server.started else FAILURE_EXIT_CODE
    finally:
        sock.close()
        try:
            await metrics.aclose()
        finally:
            await store.aclose()


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
    help="Check the configuration, the listen address and the database (creating or "
    "migrating it), print a summary and exit.",
)
def run(
    file: str | None,
    listen: str | None,
    database: str | None,
    registration_token: str | None,
    admin_token: str | None,
    check: bool,
) -> None:
    """Serve the worker protocol and the HTTP API until SIGTERM or SIGINT."""
    configure_logging("info", None, None, 0, console_rich=False)
    try:
        values = read_controller_file(file) if file else {}
        instances = read_instance_mapping(file)
        address = parse_listen(
            listen or values.get("listen", DEFAULT_LISTEN), "--listen" if listen else "listen"
        )
        url = database_url(database or values.get("database"), os.environ)
        check_database_url(
            url, "--database" if database or "database" not in values else "database"
        )
        code = asyncio.run(
            (_check if check else _serve)(
                address,
                url,
                registration_token or values.get("registration-token"),
                admin_token or values.get("admin-token"),
                instances,
                values.get(STARLARK_HTTP) == "true",
            )
        )
    except ControllerSetupError as error:
        _fail(str(error), USAGE_EXIT_CODE)
    except StoreError as error:
        _fail(f"--database: {error}", FAILURE_EXIT_CODE)
    finally:
        shutdown_logging()
    sys.exit(code)
