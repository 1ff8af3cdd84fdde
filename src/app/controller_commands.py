"""``cirrus controller run``: the controller (Twirp services and HTTP API) served by uvicorn.

Also the pieces ``cirrus run`` reuses: parsing ``--listen`` and ``--database``, opening the
store, the tokens generated on first start, and ``ControllerServer`` (uvicorn without its own
signal handling, releasing held polls as soon as shutdown begins).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import faulthandler
import logging
import os
import resource
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

from adapters.blobs.config import SECTION as BLOBS_SECTION
from adapters.blobs.config import (
    BlobSettings,
    default_directory_of,
    open_blob_store,
    parse_blob_settings,
)
from adapters.cirrus_config.limits import (
    MAX_BYTES_KEY,
    MAX_DEPTH_CEILING,
    MAX_DEPTH_KEY,
    MAX_NODES_KEY,
    ConfigLimits,
)
from adapters.config.instance_mapping import SECTION as INSTANCES_SECTION
from adapters.config.instance_mapping import instance_mapping_from
from adapters.config.yaml_file import parse_yaml
from adapters.logging import configure_logging, shutdown_logging
from adapters.secrets import load_secret_cipher
from adapters.storage.open_store import (
    MEMORY,
    SQLITE_PREFIX,
    DatabaseKind,
    DatabaseUrl,
    parse_database_url,
    redact,
)
from adapters.storage.open_store import open_store as open_database
from adapters.storage.postgres_wakeups import PostgresWakeups
from adapters.telemetry.controller_instruments import setup_controller_telemetry
from app.controller.blobs_api import DEFAULT_BLOB_MAX_BYTES
from app.controller.cache_service import CACHES_SECTION, parse_cache_limits
from app.controller.forge_settings import FORGE_FILE_KEYS, ForgeSettings, forge_settings_of
from app.controller.long_poll import QueuedNotice, QueueWatch, WakeRelay
from app.controller.retention import SECTION as RETENTION_SECTION
from app.controller.retention import RetentionSettings, parse_retention
from app.controller.server import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    ControllerLimits,
    ControllerRuntime,
    create_app,
)
from app.controller.snapshots_api import DEFAULT_SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_BYTES_KEY
from app.controller.task_logs import DEFAULT_LOG_QUOTA_BYTES
from app.controller_tokens import (
    ADMIN,
    REGISTRATION,
    ControllerSetupError,
    resolve_token,
    rotate_token,
    token_state,
)
from app.version import version
from app.worker.clock import SystemClock
from domain.artifacts import CacheLimits
from domain.blobs import BlobStore
from domain.cirrus_config.context import InstanceResolver
from domain.cirrus_config.instances import MappedInstances
from domain.errors import CirrusError, ConfigError
from domain.store import ControllerStore, StoreError

log = logging.getLogger("cirrus.controller")

DEFAULT_LISTEN = "127.0.0.1:8080"
USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1
GRACEFUL_SHUTDOWN_SECONDS = 10
LISTEN_BACKLOG = 2048
"""Pending connections the listening socket queues (capped by ``net.core.somaxconn``)."""
KEEP_ALIVE_SECONDS = 75
"""How long an idle worker connection stays open between polls (longer than a poll interval:
a worker re-uses its connection instead of opening one per poll)."""
STARLARK_HTTP = "starlark-http"
WEB_SECTION = "web"
"""Controller file key: the web interface's settings, a mapping (``public: true``)."""
WEB_PUBLIC = "web.public"
"""Where ``read_controller_file`` puts ``web: {public: ...}`` ("true"/"false")."""
"""Controller file key: may a ``.cirrus.star`` use the ``http`` module (default false)."""
CONFIG_LIMIT_KEYS = (MAX_BYTES_KEY, MAX_DEPTH_KEY, MAX_NODES_KEY)
"""Controller file keys: the limits of submitted configurations (``ConfigLimits``)."""
FILE_KEYS = (
    "listen",
    "database",
    "registration-token",
    "admin-token",
    INSTANCES_SECTION,
    BLOBS_SECTION,
    RETENTION_SECTION,
    CACHES_SECTION,
    STARLARK_HTTP,
    WEB_SECTION,
    *CONFIG_LIMIT_KEYS,
    SNAPSHOT_MAX_BYTES_KEY,
    *FORGE_FILE_KEYS,
)


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
        return PostgresWakeups(url.target, QueuedNotice)
    return QueueWatch(store)


def bind_socket(address: ListenAddress) -> socket.socket:
    """Bind a listening TCP socket (port 0: any free port); errors name ``--listen``."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((address.host, address.port))
        # Workers reconnect together after a restart: 128 pending connections would refuse some.
        sock.listen(LISTEN_BACKLOG)
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
        backlog=LISTEN_BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    logging.getLogger("uvicorn.error").addFilter(_QUIET_CANCELLATION)  # added once
    return ControllerServer(config, app.state.controller)


def raise_open_file_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit; return the limit now.

    Every held poll is an open connection: the common soft default of 1024 would refuse
    workers long before the hard limit (raising the hard one needs privileges; not tried).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_controller_file(path: str) -> dict[str, str]:
    """Read ``-f FILE``: a YAML mapping with the keys ``listen``, ``database``,
    ``registration-token`` and ``admin-token`` (all optional strings)."""
    try:
        document = parse_yaml(Path(path).read_text(encoding="utf-8"), path)
    except OSError as error:
        raise ControllerSetupError(path, f"cannot read: {error.strerror or error}") from None
    except ConfigError as error:
        # Names the file, line and column (PyYAML's own text says "<unicode string>").
        raise ControllerSetupError(error.key, error.message) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ControllerSetupError(path, "the configuration must be a mapping of keys to values")
    values: dict[str, str] = {}
    for key, value in document.items():
        if key not in FILE_KEYS:
            raise ControllerSetupError(str(key), f"unknown key (known: {', '.join(FILE_KEYS)})")
        if key in (INSTANCES_SECTION, BLOBS_SECTION, RETENTION_SECTION, CACHES_SECTION):
            continue  # mappings, read by ``read_instance_mapping`` and ``read_blob_sections``
        if key == WEB_SECTION:
            values.update(_web_settings(value))
            continue
        if key == STARLARK_HTTP:
            if not isinstance(value, bool):
                raise ControllerSetupError(str(key), "must be true or false")
            values[key] = "true" if value else "false"
            continue
        # Numbers of seconds may be fractions (``forge-retry-initial-seconds: 0.5``).
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ControllerSetupError(str(key), "must be a string")
        values[key] = str(value)
    return values


def _web_settings(value: object) -> dict[str, str]:
    """Check the ``web`` mapping; return its settings as file values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ControllerSetupError(WEB_SECTION, "must be a mapping (e.g. {public: true})")
    for key, setting in value.items():
        if key != "public":
            raise ControllerSetupError(f"{WEB_SECTION}.{key}", "unknown key (known: public)")
        if not isinstance(setting, bool):
            raise ControllerSetupError(WEB_PUBLIC, "must be true or false")
    return {WEB_PUBLIC: "true" if value.get("public") else "false"}


def config_limits_of(values: Mapping[str, str]) -> ConfigLimits:
    """Return the configuration limits of the controller file's ``config-max-*`` keys."""
    numbers: dict[str, int] = {}
    for key in CONFIG_LIMIT_KEYS:
        if key not in values:
            continue
        text = values[key]
        ceiling = MAX_DEPTH_CEILING if key == MAX_DEPTH_KEY else None
        if not text.isdigit() or int(text) < 1 or (ceiling and int(text) > ceiling):
            upper = f" up to {ceiling}" if ceiling else ""
            raise ControllerSetupError(key, f"must be a whole number from 1{upper}, not {text!r}")
        numbers[key] = int(text)
    defaults = ConfigLimits()
    return ConfigLimits(
        max_bytes=numbers.get(MAX_BYTES_KEY, defaults.max_bytes),
        max_depth=numbers.get(MAX_DEPTH_KEY, defaults.max_depth),
        max_nodes=numbers.get(MAX_NODES_KEY, defaults.max_nodes),
    )


def snapshot_max_bytes_of(flag: int | None, values: Mapping[str, str]) -> int:
    """Return the snapshot size limit: ``--snapshot-max-bytes``, else the file's key."""
    if flag is not None:
        return flag
    text = values.get(SNAPSHOT_MAX_BYTES_KEY)
    if text is None:
        return DEFAULT_SNAPSHOT_MAX_BYTES
    if not text.isdigit() or int(text) < 1:
        raise ControllerSetupError(
            SNAPSHOT_MAX_BYTES_KEY, f"must be a whole number of bytes from 1, not {text!r}"
        )
    return int(text)


def read_instance_mapping(path: str | None) -> InstanceResolver:
    """Return the instance mapping of ``-f FILE``'s ``instances:`` (the shipped one without)."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None
    section = document.get(INSTANCES_SECTION) if isinstance(document, dict) else None
    try:
        return MappedInstances(instance_mapping_from(section))
    except ConfigError as error:
        raise ControllerSetupError(error.key, error.message) from None


def read_cache_limits(path: str | None) -> CacheLimits:
    """Return ``-f FILE``'s ``caches:`` limits (the defaults without)."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None
    section = document.get(CACHES_SECTION) if isinstance(document, dict) else None
    try:
        return parse_cache_limits(section)
    except ConfigError as error:
        raise ControllerSetupError(error.key, error.message) from None


def read_blob_sections(path: str | None) -> tuple[BlobSettings, RetentionSettings]:
    """Return ``-f FILE``'s ``blobs:`` and ``retention:`` settings (the defaults without)."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None
    sections = document if isinstance(document, dict) else {}
    try:
        return (
            parse_blob_settings(sections.get(BLOBS_SECTION)),
            parse_retention(sections.get(RETENTION_SECTION)),
        )
    except ConfigError as error:
        raise ControllerSetupError(error.key, error.message) from None


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


def _with_public_url(
    settings: ForgeSettings, address: ListenAddress, sock: socket.socket
) -> ForgeSettings:
    """Return ``settings`` whose public URL defaults to the listen URL (its real port)."""
    if settings.public_url:
        return settings
    listened = ListenAddress(address.host, sock.getsockname()[1])
    return dataclasses.replace(settings, public_url=listened.url)


def _fail(message: str, code: int) -> NoReturn:
    click.echo("cirrus: " + " ".join(message.split()), err=True)
    sys.exit(code)


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file that does not exist yet, else None."""
    checked = check_database_url(url)
    if checked.kind is not DatabaseKind.SQLITE or checked.target == MEMORY:
        return None
    return None if Path(checked.target).exists() else checked.target


async def _check(
    address: ListenAddress,
    url: str,
    registration_token: str | None,
    admin_token: str | None,
    _instances: InstanceResolver,  # already read and validated
    _starlark_http: bool,
    _limits: ControllerLimits,
) -> int:
    bind_socket(address).close()  # it is free now; ``run`` binds it again
    missing = missing_sqlite_file(url)
    if missing is None:
        store = await open_store(url, os.environ)
        try:
            registration = await token_state(store, registration_token, REGISTRATION)
            admin = await token_state(store, admin_token, ADMIN)
        finally:
            await store.aclose()
        database = f"{redact(url)} (opened, schema up to date)"
    else:
        # A check only looks: the first ``controller run`` creates the file, not --check.
        first = "generated and printed on the first start"
        registration = "given" if registration_token else first
        admin = "given" if admin_token else first
        database = (
            f"{redact(url)} does not exist yet (not created by --check; "
            f"`cirrus controller run` creates {missing})"
        )
    free = "any free port" if address.port == 0 else "free"
    click.echo(f"listen: {address.url} ({free})")
    click.echo(f"database: {database}")
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
    limits: ControllerLimits,
) -> int:
    # Signals are routed from the start: a SIGTERM that arrives while the store opens, or just
    # after "listening" is printed, stops the controller cleanly instead of killing it.
    stop = _StopRequests()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.on_signal, signum)
    try:
        return await _open_and_serve(
            address, url, registration_token, admin_token, stop, instances, starlark_http, limits
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
    limits: ControllerLimits,
) -> int:
    log.info("open-file limit: %d (each held poll is one)", raise_open_file_limit())
    sock = bind_socket(address)
    try:
        store = await open_store(url, os.environ)
    except BaseException:
        sock.close()
        raise
    metrics = setup_controller_telemetry(version(), prometheus=True, wall_clock=SystemClock().now)
    try:
        registration = await resolve_token(store, registration_token, REGISTRATION)
        admin = await resolve_token(store, admin_token, ADMIN)
        cipher = await load_secret_cipher(store)
        blobs = await open_controller_blobs(limits.blobs, url, store)
        server = controller_server(
            create_app(
                store,
                registration_token=registration.expected,
                admin_token=admin.expected,
                metrics=metrics,
                secrets=cipher,
                instances=instances,
                starlark_http=starlark_http,
                worker_offline_after_seconds=limits.worker_offline_after_seconds,
                log_quota_bytes=limits.log_quota_bytes,
                snapshot_max_bytes=limits.snapshot_max_bytes,
                config_limits=limits.config,
                web_public=limits.web_public,
                blobs=blobs,
                blob_max_bytes=limits.blobs.max_bytes or DEFAULT_BLOB_MAX_BYTES,
                retention=limits.retention,
                cache_limits=limits.caches,
                forge=_with_public_url(limits.forge, address, sock),
            )
        )
        stop.attach(server)
        for slot, served in ((REGISTRATION, registration), (ADMIN, admin)):
            if served.new_token is not None:
                click.echo(f"{slot.label}: {served.new_token}")
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
) -> None:
    """Serve the worker protocol and the HTTP API until SIGTERM or SIGINT."""
    configure_logging("info", None, None, 0, console_rich=False)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: what a controller that does not
    # stop (or answer) is waiting for, without stopping it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        values = read_controller_file(file) if file else {}
        instances = read_instance_mapping(file)
        blob_settings, retention = read_blob_sections(file)
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
                ControllerLimits(
                    worker_offline_after,
                    log_quota,
                    config_limits_of(values),
                    snapshot_max_bytes_of(snapshot_max_bytes, values),
                    web_public=values.get(WEB_PUBLIC) == "true",
                    blobs=blob_settings,
                    retention=retention,
                    caches=read_cache_limits(file),
                    forge=forge_settings_of(values),
                ),
            )
        )
    except ControllerSetupError as error:
        _fail(str(error), USAGE_EXIT_CODE)
    except StoreError as error:
        _fail(f"--database: {error}", FAILURE_EXIT_CODE)
    finally:
        shutdown_logging()
    sys.exit(code)


def _check_rotation(url: str, which: tuple[str, ...], file_values: Mapping[str, str]) -> None:
    for slot in (REGISTRATION, ADMIN):
        key = slot.flag.removeprefix("--")
        if key in which and key in file_values:
            raise ControllerSetupError(
                key,
                "is set in the controller file; a rotated token would not be served: "
                "change it there",
            )
    checked = check_database_url(url)
    if checked.kind is DatabaseKind.SQLITE:
        if checked.target == MEMORY:
            raise ControllerSetupError("--database", "an in-memory database keeps no tokens")
        if not Path(checked.target).is_file():
            raise ControllerSetupError(
                "--database", f"no database at {checked.target} (start the controller once)"
            )


async def _rotate(url: str, which: tuple[str, ...]) -> None:
    store = await open_store(url, os.environ)
    try:
        for slot in (REGISTRATION, ADMIN):
            if slot.flag.removeprefix("--") in which:
                click.echo(f"{slot.label}: {await rotate_token(store, slot)}")
    finally:
        await store.aclose()


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
        for key, chosen in (("registration-token", registration), ("admin-token", admin))
        if chosen or not (registration or admin)
    )
    try:
        values = read_controller_file(file) if file else {}
        url = database_url(database or values.get("database"), os.environ)
        _check_rotation(url, which, values)
        asyncio.run(_rotate(url, which))
    except ControllerSetupError as error:
        _fail(str(error), USAGE_EXIT_CODE)
    except StoreError as error:
        _fail(f"--database: {error}", FAILURE_EXIT_CODE)
    click.echo(
        "the database holds only the new tokens' hashes; restart the controller (every one "
        "sharing this database) to serve them, and give the new tokens to workers and users",
        err=True,
    )
