"""What one ``cirrus controller run`` serves: its flags and its file, resolved and checked.

``ControllerSettings`` is the validated input of the ``ControllerContainer``. A flag wins over
its file key; an error names whichever of the two gave the bad value (``--listen`` or
``listen``), as a ``ControllerSetupError`` (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.http_server.listen import ListenAddress, parse_listen
from adapters.storage.open_store import SQLITE_PREFIX, DatabaseUrl, parse_database_url
from app.controller.blobs_api import DEFAULT_BLOB_MAX_BYTES
from app.controller.config_file import ControllerFile
from app.controller.grpc_serving import GRPC_LISTEN
from app.controller.server import ControllerLimits
from app.controller.snapshots_api import DEFAULT_SNAPSHOT_MAX_BYTES
from app.controller.task_logs import DEFAULT_LOG_QUOTA_BYTES
from app.controller_tokens import ControllerSetupError
from domain.cirrus_config.instances import MappedInstances
from domain.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class ControllerFlags:
    """The options of ``cirrus controller run`` (None: not given)."""

    listen: str | None = None
    database: str | None = None
    registration_token: str | None = None
    admin_token: str | None = None
    worker_offline_after: float | None = None
    log_quota: int = DEFAULT_LOG_QUOTA_BYTES
    snapshot_max_bytes: int | None = None
    grpc_listen: str | None = None


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """Everything a controller process is built from, checked."""

    address: ListenAddress
    database_url: str
    registration_token: str | None
    admin_token: str | None
    instances: MappedInstances
    starlark_http: bool
    limits: ControllerLimits

    @property
    def database(self) -> DatabaseUrl:
        """The parsed database URL (checked when the settings were made)."""
        return parse_database_url(self.database_url)

    @property
    def blob_max_bytes(self) -> int:
        """The largest blob one upload may carry."""
        return self.limits.blobs.max_bytes or DEFAULT_BLOB_MAX_BYTES


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


def listen_address(value: str, key: str) -> ListenAddress:
    """Parse ``HOST:PORT``; a bad one is a ``ControllerSetupError`` naming ``key``."""
    try:
        return parse_listen(value, key)
    except ConfigError as error:
        raise ControllerSetupError(error.key, error.message) from None


def controller_settings(
    flags: ControllerFlags, file: ControllerFile, environ: Mapping[str, str]
) -> ControllerSettings:
    """Resolve ``flags`` over ``file``; check the addresses and the database URL."""
    address = listen_address(
        flags.listen or file.listen or DEFAULT_LISTEN, "--listen" if flags.listen else "listen"
    )
    grpc_key = "--grpc-listen" if flags.grpc_listen else GRPC_LISTEN
    grpc_value = flags.grpc_listen or file.grpc_listen
    grpc = listen_address(grpc_value, grpc_key) if grpc_value else None
    url = database_url(flags.database or file.database, environ)
    check_database_url(
        url, "--database" if flags.database or not file.has("database") else "database"
    )
    snapshot_max_bytes = flags.snapshot_max_bytes or file.snapshot_max_bytes
    return ControllerSettings(
        address=address,
        database_url=url,
        registration_token=flags.registration_token or file.registration_token,
        admin_token=flags.admin_token or file.admin_token,
        instances=file.instances,
        starlark_http=file.starlark_http,
        limits=ControllerLimits(
            flags.worker_offline_after,
            flags.log_quota,
            file.config_limits,
            snapshot_max_bytes or DEFAULT_SNAPSHOT_MAX_BYTES,
            web_public=file.web_public,
            blobs=file.blobs,
            retention=file.retention,
            caches=file.caches,
            forge=file.forge,
            grpc_listen=None if grpc is None else (grpc.host, grpc.port),
            grpc_listen_key=grpc_key,
        ),
    )
