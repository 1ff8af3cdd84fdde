"""The worker settings the environment gives, read with pydantic-settings (see ``environment``).

``CIRRUS_WORKER_NAME``, ``CIRRUS_WORKER_TOKEN`` and ``CIRRUS_WORKER_RPC_ENDPOINT`` (CLI.md); an
empty variable counts as not given. The environment is passed in as a mapping, so that loading
stays a pure function of its inputs in tests, and the precedence flag > environment > file >
default is decided in one place (``loader.merge_worker_config``).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from adapters.config.environment import ENV_PREFIX


class WorkerEnvironment(BaseSettings):
    """Worker name, registration token and RPC endpoint from ``CIRRUS_WORKER_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True, extra="ignore"
    )

    name: str | None = None
    token: str | None = None
    rpc_endpoint: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> WorkerEnvironment:
        """Read the settings from ``environ`` (normally ``os.environ``)."""
        return cls(**_MappingEnvSource(cls, environ)())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values ``from_environ`` read: never the process environment behind it."""
        return (init_settings,)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._given_environ = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Only the upper-case names of CLI.md; lower-cased because the source matches
        # case-insensitively once the names are normalised.
        return {
            key.lower(): value
            for key, value in self._given_environ.items()
            if key.startswith(ENV_PREFIX) and value != ""
        }
