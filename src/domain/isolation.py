"""Isolation model: where a task runs, with every field of the Cirrus ``Isolation`` proto message.

Equality follows proto3 equality: a field left at its default equals an absent field, maps are
compared by content whatever their order, repeated fields element-wise in order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias


class Platform(enum.IntEnum):
    """Proto enum ``Platform``."""

    LINUX = 0
    WINDOWS = 1
    DARWIN = 2


def freeze_str_map(
    value: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    """Return a map as sorted key/value pairs, so that equal maps compare equal."""
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted(dict(items).items()))


@dataclass(frozen=True, slots=True)
class NoneIsolation:
    """Run on the host, in a per-task working directory (``Isolation.None``)."""

    kind = "none"


@dataclass(frozen=True, slots=True)
class UnsetIsolation:
    """An ``Isolation`` message whose ``type`` oneof is not set; never runnable."""

    kind = "unset"


@dataclass(frozen=True, slots=True)
class ContainerVolume:
    """Proto message ``Volume``: a bind mount into a container."""

    source: str = ""
    target: str = ""
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class PortMapping:
    """Proto message ``PortMapping``: a port of an additional container."""

    container_port: int = 0
    host_port: int = 0


@dataclass(frozen=True, slots=True)
class AdditionalContainer:
    """Proto message ``AdditionalContainer``: a service container beside the task's container.

    It shares the main container's network namespace, so the task reaches it on
    ``localhost:<port>``; ``memory`` is in MB; ``command`` and ``readiness_command`` are argv
    lists (empty: the image's own command / no readiness check).
    """

    name: str = ""
    image: str = ""
    cpu: float = 0.0
    memory: int = 0
    container_port: int = 0
    environment: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    readiness_command: tuple[str, ...] = ()
    privileged: bool = False
    host_port: int = 0
    ports: tuple[PortMapping, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", freeze_str_map(self.environment))
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "readiness_command", tuple(self.readiness_command))
        object.__setattr__(self, "ports", tuple(self.ports))


@dataclass(frozen=True, slots=True)
class ContainerIsolation:
    """Proto message ``Isolation.Container``; ``memory`` is in MB.

    ``additional_containers`` is this project's field 100 (the hosted original carried them in
    ``ContainerInstance``, which a persistent worker never sees).
    """

    image: str = ""
    cpu: float = 0.0
    memory: int = 0
    volumes: tuple[ContainerVolume, ...] = ()
    dockerfile: str = ""
    docker_arguments: tuple[tuple[str, str], ...] = ()
    platform: Platform = Platform.LINUX
    additional_containers: tuple[AdditionalContainer, ...] = ()

    kind = "container"

    def __post_init__(self) -> None:
        object.__setattr__(self, "volumes", tuple(self.volumes))
        object.__setattr__(self, "docker_arguments", freeze_str_map(self.docker_arguments))
        object.__setattr__(self, "additional_containers", tuple(self.additional_containers))


@dataclass(frozen=True, slots=True)
class TartVolume:
    """Proto message ``Isolation.Tart.Volume``: a host directory shared into a Tart VM."""

    name: str = ""
    source: str = ""
    target: str = ""
    read_only: bool = False
    cleanup: bool = False


@dataclass(frozen=True, slots=True)
class TartIsolation:
    """Proto message ``Isolation.Tart``; ``memory`` in MiB, ``disk_size`` in GB."""

    image: str = ""
    user: str = ""
    password: str = ""
    cpu: int = 0
    memory: int = 0
    softnet: bool = False
    mount_temporary_working_directory_from_host: bool = False
    display: str = ""
    volumes: tuple[TartVolume, ...] = ()
    disk_size: int = 0
    port: int = 0
    sync_time_over_ssh: bool = False
    nested: bool = False

    kind = "tart"

    def __post_init__(self) -> None:
        object.__setattr__(self, "volumes", tuple(self.volumes))


@dataclass(frozen=True, slots=True)
class VetuBridged:
    """Vetu bridged networking on a host interface."""

    interface: str = ""


@dataclass(frozen=True, slots=True)
class VetuHost:
    """Vetu host networking."""


VetuNetworking: TypeAlias = VetuBridged | VetuHost | None


@dataclass(frozen=True, slots=True)
class VetuIsolation:
    """Proto message ``Isolation.Vetu``; ``networking`` None means Vetu's default (gVisor)."""

    image: str = ""
    user: str = ""
    password: str = ""
    cpu: int = 0
    memory: int = 0
    networking: VetuNetworking = None
    disk_size: int = 0
    port: int = 0
    sync_time_over_ssh: bool = False
    standard_output_to_logs: bool = False

    kind = "vetu"


@dataclass(frozen=True, slots=True)
class ParallelsIsolation:
    """Proto message ``Isolation.Parallels`` (recognised, never run by this worker)."""

    image: str = ""
    user: str = ""
    password: str = ""
    platform: Platform = Platform.LINUX

    kind = "parallels"


Isolation: TypeAlias = (
    NoneIsolation
    | UnsetIsolation
    | ContainerIsolation
    | TartIsolation
    | VetuIsolation
    | ParallelsIsolation
)

ISOLATION_KINDS: tuple[str, ...] = ("none", "container", "tart", "vetu", "parallels")


def isolation_kind(isolation: Isolation) -> str:
    """Return the oneof member name of an isolation: ``none``, ``container``, ``tart``…"""
    return isolation.kind


def instance_attributes(isolation: Isolation) -> dict[str, str | float]:
    """Return the metric/span attributes the original attaches to an instance of this isolation."""
    match isolation:
        case ContainerIsolation(image=image, cpu=cpu):
            return {"image": image, "instance_type": "container", "instance_cpus": float(cpu)}
        case TartIsolation(image=image, cpu=cpu) | VetuIsolation(image=image, cpu=cpu):
            return {"image": image, "instance_type": isolation.kind, "instance_cpus": float(cpu)}
        case ParallelsIsolation(image=image):
            return {"image": image, "instance_type": "parallels"}
        case _:
            return {"instance_type": isolation.kind}
