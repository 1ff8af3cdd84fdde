"""The worker configuration file's schema: strict pydantic models, one per YAML mapping.

Every model forbids unknown keys and coerces nothing (a YAML integer is still accepted for a
float), so that a typo cannot silently weaken the security policy. Unlike the original, the
``standby`` section is as strict as the rest. Values with units (sizes, durations, memory) are
converted here with ``domain.units``; turning the models into domain objects is ``loader``'s job.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from domain.units import parse_duration_seconds, parse_memory_mib, parse_size_bytes

LOG_LEVELS: tuple[str, ...] = (
    "panic",
    "fatal",
    "error",
    "warning",
    "warn",
    "info",
    "debug",
    "trace",
)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys and loose types are errors; values are frozen."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
        populate_by_name=False,
    )


def _duration_seconds(value: object) -> object:
    """Turn a Go duration string (or a bare number, refused for its missing unit) into seconds."""
    if isinstance(value, bool):
        return value  # left for the int check to refuse
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str):
        return parse_duration_seconds(value)
    return value


def _size_bytes(value: object) -> object:
    """Turn a size such as ``100 MiB`` (or a bare byte count) into bytes."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        return parse_size_bytes(value)
    return value


def _memory_mib(value: object) -> object:
    """Turn a Cirrus memory amount (``12``, ``4G``, ``4096M``) into MiB."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return parse_memory_mib(value)
    return value


def _log_level(value: object) -> object:
    """Lower-case a log level name and check it is one of logrus's."""
    if not isinstance(value, str):
        return value
    level = value.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f'not a valid log level: "{value}" (use {", ".join(LOG_LEVELS)})')
    return level


def _http_url(value: object) -> object:
    """Check that an endpoint is an absolute http(s) URL."""
    if isinstance(value, str):
        check_endpoint(value)
    return value


def _cidr(value: object) -> object:
    """Check that a softnet rule is an IP network in CIDR notation."""
    if isinstance(value, str):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as error:
            raise ValueError(f"not a CIDR network such as 10.0.0.0/16: {value!r}") from error
    return value


def check_endpoint(url: str) -> str:
    """Return ``url`` if it is an absolute ``http``/``https`` URL, else raise ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL such as http://127.0.0.1:8080: {url!r}")
    return url


Seconds = Annotated[int, BeforeValidator(_duration_seconds), Field(ge=0)]
Bytes = Annotated[int, BeforeValidator(_size_bytes), Field(ge=0)]
MemoryMiB = Annotated[int, BeforeValidator(_memory_mib), Field(ge=0)]
Endpoint = Annotated[str, BeforeValidator(_http_url)]
Cidr = Annotated[str, BeforeValidator(_cidr)]
ResourceAmount = Annotated[float, Field(ge=0)]
Port = Annotated[int, Field(ge=0, le=65535)]
Count = Annotated[int, Field(ge=0)]


# --- log, rpc, upstreams --------------------------------------------------------------------


class LogModel(StrictModel):
    """``log``: level, optional file and its rotation."""

    level: Annotated[str, BeforeValidator(_log_level)] | None = None
    file: str | None = None
    rotate_size: Bytes | None = Field(default=None, alias="rotate-size")
    max_rotations: Count | None = Field(default=None, alias="max-rotations")


class RpcModel(StrictModel):
    """``rpc``: the single controller's endpoint."""

    endpoint: Endpoint | None = None


class UpstreamModel(StrictModel):
    """One ``upstreams`` entry: a controller and the registration token for its pool."""

    endpoint: Endpoint | None = None
    token: str = ""


# --- security -------------------------------------------------------------------------------


class VolumeRuleModel(StrictModel):
    """One ``allowed-volumes`` entry."""

    source: str
    force_readonly: bool = Field(default=False, alias="force-readonly")


class EmptyPolicyModel(StrictModel):
    """``none: {}`` and ``parallels: {}``: allowed, nothing to configure."""


class ContainerPolicyModel(StrictModel):
    """``allowed-isolations.container``; absent ``allowed-volumes`` allows every volume."""

    allowed_images: list[str] | None = Field(default=None, alias="allowed-images")
    allowed_volumes: list[VolumeRuleModel] | None = Field(default=None, alias="allowed-volumes")


class TartPolicyModel(StrictModel):
    """``allowed-isolations.tart``; absent ``allowed-volumes`` refuses every volume."""

    allowed_images: list[str] | None = Field(default=None, alias="allowed-images")
    allowed_volumes: list[VolumeRuleModel] | None = Field(default=None, alias="allowed-volumes")
    force_softnet: bool = Field(default=False, alias="force-softnet")
    softnet_allow: list[Cidr] | None = Field(default=None, alias="softnet-allow")


class VetuPolicyModel(StrictModel):
    """``allowed-isolations.vetu``."""

    allowed_images: list[str] | None = Field(default=None, alias="allowed-images")


class AllowedIsolationsModel(StrictModel):
    """``allowed-isolations``: a type is allowed iff its key has a non-null value."""

    none: EmptyPolicyModel | None = None
    container: ContainerPolicyModel | None = None
    tart: TartPolicyModel | None = None
    vetu: VetuPolicyModel | None = None
    parallels: EmptyPolicyModel | None = None


class SecurityModel(StrictModel):
    """``security``; absent ``allowed-isolations`` allows every isolation."""

    allowed_isolations: AllowedIsolationsModel | None = Field(
        default=None, alias="allowed-isolations"
    )


# --- standby --------------------------------------------------------------------------------


class StandbyTartVolumeModel(StrictModel):
    """A volume of the standby Tart VM."""

    name: str = ""
    source: str
    target: str = ""
    readonly: bool = False


class StandbyTartModel(StrictModel):
    """``standby.isolation.tart``: the keys the original's standby parser understands."""

    image: str
    user: str = "admin"
    password: str = "admin"
    port: Port = 0
    cpu: Count = 0
    memory: MemoryMiB = 0
    softnet: bool = False
    display: str = ""
    volumes: list[StandbyTartVolumeModel] = Field(default_factory=list)


class HostNetworkingModel(StrictModel):
    """``networking: {host: {}}``."""


class VetuNetworkingModel(StrictModel):
    """``standby.isolation.vetu.networking``: only host networking can be chosen here."""

    host: HostNetworkingModel | None = None

    @model_validator(mode="after")
    def _host_is_given(self) -> VetuNetworkingModel:
        if self.host is None:
            raise ValueError("please specify the networking to use (only 'host: {}' is supported)")
        return self


class StandbyVetuModel(StrictModel):
    """``standby.isolation.vetu``."""

    image: str
    user: str = "admin"
    password: str = "admin"
    port: Port = 0
    cpu: Count = 0
    memory: MemoryMiB = 0
    networking: VetuNetworkingModel | None = None
    disk_size: Annotated[int, Field(ge=0, le=65535)] = 0


_NOT_FOR_STANDBY = ("none", "container", "parallels")


class StandbyIsolationModel(StrictModel):
    """``standby.isolation``: exactly one of ``tart`` and ``vetu``."""

    tart: StandbyTartModel | None = None
    vetu: StandbyVetuModel | None = None

    @model_validator(mode="before")
    @classmethod
    def _only_vm_isolations(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for kind in _NOT_FOR_STANDBY:
                if kind in data:
                    raise ValueError(
                        "only Tart and Vetu instances are currently supported for standby, "
                        f"got {kind}"
                    )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> StandbyIsolationModel:
        if self.tart is not None and self.vetu is not None:
            raise ValueError('"tart" and "vetu" are mutually exclusive')
        if self.tart is None and self.vetu is None:
            raise ValueError('one of "tart" or "vetu" is required')
        return self


class WarmupModel(StrictModel):
    """``standby.warmup``: a script run once the standby VM is up, with a time limit."""

    script: str = ""
    timeout: Seconds = 0


class StandbyModel(StrictModel):
    """``standby``: a VM kept booted and warm while no task runs (isolation checked later)."""

    resources: dict[str, ResourceAmount] = Field(default_factory=dict)
    isolation: StandbyIsolationModel | None = None
    warmup: WarmupModel | None = None


# --- resource modifiers, tuning, pre-pull ---------------------------------------------------


class AppendModel(StrictModel):
    """``append`` of a resource modifier."""

    run: list[str] = Field(default_factory=list)


class ResourceModifierModel(StrictModel):
    """One ``resource-modifiers`` entry."""

    match: dict[str, ResourceAmount] = Field(default_factory=dict)
    append: AppendModel | None = None


class VetuTuningModel(StrictModel):
    """``tuning.vetu``."""

    mtu: Annotated[int, Field(ge=0, le=65535)] = 0


class TuningModel(StrictModel):
    """``tuning``."""

    vetu: VetuTuningModel | None = None


class TartPrePullModel(StrictModel):
    """``tart-pre-pull``: images pulled ahead of the standby's warm-up."""

    images: list[str] = Field(default_factory=list)
    check_interval: Seconds = Field(default=0, alias="check-interval")
    jitter: Seconds = 0


# --- the file -------------------------------------------------------------------------------


class WorkerFileModel(StrictModel):
    """The whole worker configuration file; every key is optional."""

    name: str | None = None
    token: str | None = None
    labels: dict[str, str] | None = None
    resources: dict[str, ResourceAmount] | None = None
    rpc: RpcModel | None = None
    upstreams: list[UpstreamModel] | None = None
    log: LogModel | None = None
    security: SecurityModel | None = None
    standby: StandbyModel | None = None
    resource_modifiers: list[ResourceModifierModel] | None = Field(
        default=None, alias="resource-modifiers"
    )
    tuning: TuningModel | None = None
    tart_pre_pull: TartPrePullModel | None = Field(default=None, alias="tart-pre-pull")
