"""The effective worker configuration: flags, environment and file merged, as frozen values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.modifiers import ResourceModifier
from domain.policy import SecurityPolicy
from domain.protocol import StandbyParameters, frozen_float_map, frozen_str_map

DEFAULT_RPC_ENDPOINT = "http://127.0.0.1:8080"
"""A local ``cirrus controller run``."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """One controller the worker registers with, and the pool's registration token."""

    endpoint: str
    token: str = ""

    def __repr__(self) -> str:
        # Tokens never end up in a log line or a traceback through repr().
        return f"Upstream(endpoint={self.endpoint!r}, token={'***' if self.token else ''!r})"


@dataclass(frozen=True, slots=True)
class LogSettings:
    """``log``: ``rotate_size_bytes`` None means never rotate, ``max_rotations`` 0 keeps all."""

    level: str = "info"
    file: str | None = None
    rotate_size_bytes: int | None = None
    max_rotations: int = 0


@dataclass(frozen=True, slots=True)
class TartPrePull:
    """``tart-pre-pull``: images pulled before warming the standby, at most every interval."""

    images: tuple[str, ...] = ()
    check_interval_seconds: int = 0
    jitter_seconds: int = 0


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker needs from its configuration, already checked."""

    name: str
    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    resources: Mapping[str, float] = field(default_factory=frozen_float_map)
    upstreams: tuple[Upstream, ...] = ()
    log: LogSettings = field(default_factory=LogSettings)
    tuning_vetu_mtu: int = 0
    tart_pre_pull: TartPrePull = field(default_factory=TartPrePull)
    security: SecurityPolicy = field(default_factory=SecurityPolicy)
    modifiers: tuple[ResourceModifier, ...] = ()
    standby_parameters: StandbyParameters | None = None

    def security_policy(self) -> SecurityPolicy:
        """Return the ``security`` section as the domain policy."""
        return self.security

    def resource_modifiers(self) -> tuple[ResourceModifier, ...]:
        """Return the ``resource-modifiers`` in configuration order."""
        return self.modifiers

    def standby(self) -> StandbyParameters | None:
        """Return the configured standby instance, or None without a ``standby`` section."""
        return self.standby_parameters

    def secrets(self) -> tuple[str, ...]:
        """Return the values that must never be logged (the registration tokens)."""
        return tuple(upstream.token for upstream in self.upstreams if upstream.token)
