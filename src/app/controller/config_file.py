"""The controller file (``cirrus controller run -f FILE``) as one validated pydantic model.

Every key is optional; ``ControllerFile()`` is a run without a file. A bad value is a
``ControllerSetupError`` naming its key (``web.public: must be true or false``), which the
command prints on one line before exiting with code 2. The validators raise it themselves:
pydantic passes exceptions other than ``ValueError`` through unchanged, so the messages stay
the ones users and tests know. Which flag wins over which key is ``app.controller.settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, field_validator, model_validator

from adapters.blobs.config import SECTION as BLOBS_SECTION
from adapters.blobs.config import BlobSettings, parse_blob_settings
from adapters.config.instance_mapping import SECTION as INSTANCES_SECTION
from adapters.config.instance_mapping import instance_mapping_from
from adapters.config.yaml_file import parse_yaml
from app.controller.cache_service import CACHES_SECTION, parse_cache_limits
from app.controller.forge_settings import FORGE_FILE_KEYS, ForgeSettings, forge_settings_of
from app.controller.grpc_serving import GRPC_LISTEN, GRPC_SECTION, grpc_settings
from app.controller.snapshots_api import SNAPSHOT_MAX_BYTES_KEY
from app.controller_tokens import ControllerSetupError
from domain.artifacts import CacheLimits
from domain.cirrus_config.instances import MappedInstances
from domain.cirrus_config.limits import (
    MAX_BYTES_KEY,
    MAX_DEPTH_CEILING,
    MAX_DEPTH_KEY,
    MAX_NODES_KEY,
    ConfigLimits,
)
from domain.errors import ConfigError
from domain.retention import SECTION as RETENTION_SECTION
from domain.retention import RetentionSettings, parse_retention

STARLARK_HTTP = "starlark-http"
"""Controller file key: may a ``.cirrus.star`` use the ``http`` module (default false)."""
WEB_SECTION = "web"
"""Controller file key: the web interface's settings, a mapping (``public: true``)."""
WEB_PUBLIC = "web.public"
CONFIG_LIMIT_KEYS = (MAX_BYTES_KEY, MAX_DEPTH_KEY, MAX_NODES_KEY)
"""Controller file keys: the limits of submitted configurations (``ConfigLimits``)."""
SECTIONS = (INSTANCES_SECTION, BLOBS_SECTION, RETENTION_SECTION, CACHES_SECTION)
"""Keys whose values are mappings, checked by their own parsers."""
FILE_KEYS = (
    "listen",
    "database",
    "registration-token",
    "admin-token",
    *SECTIONS,
    STARLARK_HTTP,
    WEB_SECTION,
    GRPC_SECTION,
    *CONFIG_LIMIT_KEYS,
    SNAPSHOT_MAX_BYTES_KEY,
    *FORGE_FILE_KEYS,
)
SCALAR_KEYS = ("listen", "database", "registration-token", "admin-token", *CONFIG_LIMIT_KEYS)
FORGE = "forge"
"""Where the model keeps the forge keys (``public-url``, ``forge-*``, ``cron-*``) together."""


def _config_error(error: ConfigError) -> ControllerSetupError:
    return ControllerSetupError(error.key, error.message)


class ControllerFile(BaseModel):
    """The keys of the controller file, checked; absent keys have their defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    listen: str | None = None
    database: str | None = None
    registration_token: str | None = Field(None, alias="registration-token")
    admin_token: str | None = Field(None, alias="admin-token")
    instances: Annotated[MappedInstances, SkipValidation] = Field(
        default_factory=lambda: MappedInstances(instance_mapping_from(None))
    )
    blobs: Annotated[BlobSettings, SkipValidation] = Field(default_factory=BlobSettings)
    retention: Annotated[RetentionSettings, SkipValidation] = Field(
        default_factory=RetentionSettings
    )
    caches: Annotated[CacheLimits, SkipValidation] = Field(default_factory=CacheLimits)
    starlark_http: bool = Field(False, alias="starlark-http")
    web_public: bool = Field(False, alias="web")
    grpc_listen: str | None = Field(None, alias="grpc")
    config_max_bytes: int | None = Field(None, alias="config-max-bytes")
    config_max_depth: int | None = Field(None, alias="config-max-depth")
    config_max_nodes: int | None = Field(None, alias="config-max-nodes")
    snapshot_max_bytes: int | None = Field(None, alias="snapshot-max-bytes")
    forge: Annotated[ForgeSettings, SkipValidation] = Field(default_factory=ForgeSettings)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, document: Any) -> Any:
        """Refuse unknown keys and non-scalar values in the file's order; group forge keys."""
        if not isinstance(document, dict):
            return document
        values: dict[str, Any] = {}
        forge: dict[str, str] = {}
        for key, value in document.items():
            if key not in FILE_KEYS:
                raise ControllerSetupError(str(key), f"unknown key (known: {', '.join(FILE_KEYS)})")
            if key in SCALAR_KEYS or key in FORGE_FILE_KEYS or key == SNAPSHOT_MAX_BYTES_KEY:
                # Numbers of seconds may be fractions (``forge-retry-initial-seconds: 0.5``).
                if not isinstance(value, str | int | float) or isinstance(value, bool):
                    raise ControllerSetupError(str(key), "must be a string")
                value = str(value)
            if key in FORGE_FILE_KEYS:
                forge[key] = value
            else:
                values[key] = value
        values[FORGE] = forge_settings_of(forge)
        return values

    @field_validator("instances", mode="before")
    @classmethod
    def _instances(cls, section: object) -> MappedInstances:
        try:
            return MappedInstances(instance_mapping_from(section))
        except ConfigError as error:
            raise _config_error(error) from None

    @field_validator("blobs", mode="before")
    @classmethod
    def _blobs(cls, section: object) -> BlobSettings:
        try:
            return parse_blob_settings(section)
        except ConfigError as error:
            raise _config_error(error) from None

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, section: object) -> RetentionSettings:
        try:
            return parse_retention(section)
        except ConfigError as error:
            raise _config_error(error) from None

    @field_validator("caches", mode="before")
    @classmethod
    def _caches(cls, section: object) -> CacheLimits:
        try:
            return parse_cache_limits(section)
        except ConfigError as error:
            raise _config_error(error) from None

    @field_validator("starlark_http", mode="before")
    @classmethod
    def _starlark_http(cls, value: object) -> bool:
        if not isinstance(value, bool):
            raise ControllerSetupError(STARLARK_HTTP, "must be true or false")
        return value

    @field_validator("web_public", mode="before")
    @classmethod
    def _web(cls, value: object) -> bool:
        if value is None:
            return False
        if not isinstance(value, dict):
            raise ControllerSetupError(WEB_SECTION, "must be a mapping (e.g. {public: true})")
        for key, setting in value.items():
            if key != "public":
                raise ControllerSetupError(f"{WEB_SECTION}.{key}", "unknown key (known: public)")
            if not isinstance(setting, bool):
                raise ControllerSetupError(WEB_PUBLIC, "must be true or false")
        return bool(value.get("public"))

    @field_validator("grpc_listen", mode="before")
    @classmethod
    def _grpc(cls, value: object) -> str | None:
        return grpc_settings(value).get(GRPC_LISTEN)

    @field_validator("config_max_bytes", "config_max_depth", "config_max_nodes", mode="before")
    @classmethod
    def _config_limit(cls, text: str, info: Any) -> int:
        key = cls.model_fields[info.field_name].alias or info.field_name
        ceiling = MAX_DEPTH_CEILING if key == MAX_DEPTH_KEY else None
        if not text.isdigit() or int(text) < 1 or (ceiling and int(text) > ceiling):
            upper = f" up to {ceiling}" if ceiling else ""
            raise ControllerSetupError(key, f"must be a whole number from 1{upper}, not {text!r}")
        return int(text)

    @field_validator("snapshot_max_bytes", mode="before")
    @classmethod
    def _snapshot_max_bytes(cls, text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise ControllerSetupError(
                SNAPSHOT_MAX_BYTES_KEY, f"must be a whole number of bytes from 1, not {text!r}"
            )
        return int(text)

    @property
    def config_limits(self) -> ConfigLimits:
        """The limits of submitted configurations (``config-max-*``, else the defaults)."""
        defaults = ConfigLimits()
        return ConfigLimits(
            max_bytes=self.config_max_bytes or defaults.max_bytes,
            max_depth=self.config_max_depth or defaults.max_depth,
            max_nodes=self.config_max_nodes or defaults.max_nodes,
        )

    def has(self, key: str) -> bool:
        """Whether the file set ``key`` (by its name in the file)."""
        fields = type(self).model_fields
        return any((fields[name].alias or name) == key for name in self.model_fields_set)


def read_controller_file(path: str | None) -> ControllerFile:
    """Read and check ``-f FILE`` (None: no file, every default)."""
    if path is None:
        return ControllerFile.model_validate({})
    try:
        document = parse_yaml(Path(path).read_text(encoding="utf-8"), path)
    except OSError as error:
        raise ControllerSetupError(path, f"cannot read: {error.strerror or error}") from None
    except ConfigError as error:
        # Names the file, line and column (PyYAML's own text says "<unicode string>").
        raise ControllerSetupError(error.key, error.message) from None
    if document is None:
        return ControllerFile.model_validate({})
    if not isinstance(document, dict):
        raise ControllerSetupError(path, "the configuration must be a mapping of keys to values")
    return ControllerFile.model_validate(document)
