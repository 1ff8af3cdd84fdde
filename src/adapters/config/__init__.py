"""The worker configuration: file schema, loading with precedence, the effective values."""

from adapters.config.effective import (
    DEFAULT_RPC_ENDPOINT,
    LogSettings,
    TartPrePull,
    Upstream,
    WorkerConfig,
)
from adapters.config.environment import ENV_NAME, ENV_RPC_ENDPOINT, ENV_TOKEN
from adapters.config.loader import WorkerFlags, load_worker_config

__all__ = [
    "DEFAULT_RPC_ENDPOINT",
    "ENV_NAME",
    "ENV_RPC_ENDPOINT",
    "ENV_TOKEN",
    "LogSettings",
    "TartPrePull",
    "Upstream",
    "WorkerConfig",
    "WorkerFlags",
    "load_worker_config",
]
