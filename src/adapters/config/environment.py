"""The ``CIRRUS_WORKER_*`` variables: names, and reading them only when some are set.

pydantic-settings (``environment_settings``) reads them; a worker whose environment holds none
of them, the usual case with a config file, does not load it: megabytes an idle worker would
otherwise keep for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "CIRRUS_WORKER_"
ENV_NAME = f"{ENV_PREFIX}NAME"
ENV_TOKEN = f"{ENV_PREFIX}TOKEN"
ENV_RPC_ENDPOINT = f"{ENV_PREFIX}RPC_ENDPOINT"


@dataclass(frozen=True, slots=True)
class EnvironmentValues:
    """What the environment gives for the worker (None: not given)."""

    name: str | None = None
    token: str | None = None
    rpc_endpoint: str | None = None


def read_worker_environment(environ: Mapping[str, str]) -> EnvironmentValues:
    """The worker's settings from ``environ``; pydantic-settings is loaded only when needed."""
    if not any(key.startswith(ENV_PREFIX) and value for key, value in environ.items()):
        return EnvironmentValues()
    from adapters.config.environment_settings import WorkerEnvironment

    settings = WorkerEnvironment.from_environ(environ)
    return EnvironmentValues(settings.name, settings.token, settings.rpc_endpoint)
