"""Reading ``persistent_worker: {labels, resources, isolation}`` of a ``.cirrus.yml`` task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.cirrus_yaml.tree import Node, Scalar, YamlList
from adapters.cirrus_yaml.values import (
    Where,
    check_keys,
    read_boolean,
    read_integer,
    read_memory_mib,
    read_number,
    read_number_map,
    read_pairs,
    read_string,
    read_string_map,
)
from domain.isolation import (
    ContainerIsolation,
    ContainerVolume,
    Isolation,
    NoneIsolation,
    TartIsolation,
    TartVolume,
    VetuBridged,
    VetuHost,
    VetuIsolation,
    VetuNetworking,
)

# Cirrus fills these in for a container that does not say (``pkg/parser/instance/isolation``).
CONTAINER_DEFAULT_CPU = 2.0
CONTAINER_DEFAULT_MEMORY_MIB = 4096

_MAX_PORT = 65535
_WORKER_KEYS = frozenset({"labels", "resources", "isolation"})
_CONTAINER_KEYS = frozenset({"image", "cpu", "memory", "volumes"})
_CONTAINER_VOLUME_KEYS = frozenset({"source", "target", "readonly"})
_TART_KEYS = frozenset(
    {
        "image", "user", "password", "port", "cpu", "memory", "softnet", "display",
        "disk_size", "nested", "volumes",
    }
)  # fmt: skip
_TART_VOLUME_KEYS = frozenset({"name", "source", "target", "readonly"})
_VETU_KEYS = frozenset(
    {"image", "user", "password", "port", "cpu", "memory", "networking", "disk_size"}
)
_VETU_NETWORKING_KEYS = frozenset({"host", "bridged"})


@dataclass(frozen=True, slots=True)
class WorkerRequirements:
    """What a task asks of its persistent worker."""

    labels: dict[str, str] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)
    isolation: Isolation = field(default_factory=NoneIsolation)


def read_persistent_worker(node: Node, where: Where) -> WorkerRequirements:
    """Return the labels, resources and isolation of a ``persistent_worker`` mapping."""
    pairs = read_pairs(node, where)
    check_keys(pairs, where, _WORKER_KEYS)
    labels: dict[str, str] = {}
    resources: dict[str, float] = {}
    isolation: Isolation = NoneIsolation()
    for key, value in pairs.items:
        if key == "labels":
            labels = read_string_map(value, where.at(key))
        elif key == "resources":
            resources = read_number_map(value, where.at(key))
        else:
            isolation = read_isolation(value, where.at(key))
    return WorkerRequirements(labels, resources, isolation)


def read_isolation(node: Node, where: Where) -> Isolation:
    """Return the isolation of an ``isolation`` mapping: exactly one of container, tart, vetu."""
    pairs = read_pairs(node, where)
    readers: dict[str, Callable[[Node, Where], Isolation]] = {
        "container": _container,
        "tart": _tart,
        "vetu": _vetu,
    }
    check_keys(pairs, where, frozenset(readers))
    if len(pairs.items) != 1:
        raise where.fail("must hold exactly one of container, tart or vetu")
    key, value = pairs.items[0]
    return readers[key](value, where.at(key))


def _container(node: Node, where: Where) -> ContainerIsolation:
    pairs = read_pairs(node, where)
    check_keys(pairs, where, _CONTAINER_KEYS)
    image = ""
    cpu = 0.0
    memory = 0
    volumes: tuple[ContainerVolume, ...] = ()
    for key, value in pairs.items:
        at = where.at(key)
        if key == "image":
            image = read_string(value, at)
        elif key == "cpu":
            cpu = read_number(value, at)
        elif key == "memory":
            memory = read_memory_mib(value, at)
        else:
            volumes = tuple(_container_volumes(value, at))
    return ContainerIsolation(
        image=image,
        cpu=cpu or CONTAINER_DEFAULT_CPU,
        memory=memory or CONTAINER_DEFAULT_MEMORY_MIB,
        volumes=volumes,
    )


def _container_volumes(node: Node, where: Where) -> list[ContainerVolume]:
    if not isinstance(node, YamlList):
        raise where.fail("must be a list")
    return [_container_volume(item, where.item(i)) for i, item in enumerate(node.items)]


def _container_volume(node: Node, where: Where) -> ContainerVolume:
    if isinstance(node, Scalar):
        # ``source:target`` or ``source:target:ro``, as Cirrus and ``docker run -v`` write it.
        parts = read_string(node, where).split(":")
        if len(parts) == 2 and all(parts):
            return ContainerVolume(parts[0], parts[1])
        if len(parts) == 3 and parts[0] and parts[1] and parts[2] == "ro":
            return ContainerVolume(parts[0], parts[1], read_only=True)
        raise where.fail("must be source:target or source:target:ro")
    pairs = read_pairs(node, where)
    check_keys(pairs, where, _CONTAINER_VOLUME_KEYS)
    fields = dict(pairs.items)
    for required in ("source", "target"):
        if required not in fields:
            raise where.at(required).fail("is required")
    read_only = "readonly" in fields and read_boolean(fields["readonly"], where.at("readonly"))
    return ContainerVolume(
        read_string(fields["source"], where.at("source")),
        read_string(fields["target"], where.at("target")),
        read_only=read_only,
    )


def _tart(node: Node, where: Where) -> TartIsolation:
    pairs = read_pairs(node, where)
    check_keys(pairs, where, _TART_KEYS)
    strings = {"image": "", "user": "", "password": "", "display": ""}
    numbers = {"port": 0, "cpu": 0, "memory": 0, "disk_size": 0}
    flags = {"softnet": False, "nested": False}
    volumes: tuple[TartVolume, ...] = ()
    for key, value in pairs.items:
        at = where.at(key)
        if key in strings:
            strings[key] = read_string(value, at)
        elif key == "memory":
            numbers[key] = read_memory_mib(value, at)
        elif key in numbers:
            numbers[key] = read_integer(value, at, _MAX_PORT if key == "port" else None)
        elif key in flags:
            flags[key] = read_boolean(value, at)
        else:
            volumes = tuple(_tart_volumes(value, at))
    return TartIsolation(
        image=strings["image"],
        user=strings["user"],
        password=strings["password"],
        display=strings["display"],
        cpu=numbers["cpu"],
        memory=numbers["memory"],
        disk_size=numbers["disk_size"],
        port=numbers["port"],
        softnet=flags["softnet"],
        nested=flags["nested"],
        volumes=volumes,
    )


def _tart_volumes(node: Node, where: Where) -> list[TartVolume]:
    if not isinstance(node, YamlList):
        raise where.fail("must be a list")
    volumes = []
    for index, item in enumerate(node.items):
        at = where.item(index)
        pairs = read_pairs(item, at)
        check_keys(pairs, at, _TART_VOLUME_KEYS)
        fields = dict(pairs.items)
        if "source" not in fields:
            raise at.at("source").fail("is required")
        volumes.append(
            TartVolume(
                name=read_string(fields["name"], at.at("name")) if "name" in fields else "",
                source=read_string(fields["source"], at.at("source")),
                target=read_string(fields["target"], at.at("target")) if "target" in fields else "",
                read_only="readonly" in fields
                and read_boolean(fields["readonly"], at.at("readonly")),
            )
        )
    return volumes


def _vetu(node: Node, where: Where) -> VetuIsolation:
    pairs = read_pairs(node, where)
    check_keys(pairs, where, _VETU_KEYS)
    strings = {"image": "", "user": "", "password": ""}
    numbers = {"port": 0, "cpu": 0, "memory": 0, "disk_size": 0}
    networking: VetuNetworking = None
    for key, value in pairs.items:
        at = where.at(key)
        if key in strings:
            strings[key] = read_string(value, at)
        elif key == "memory":
            numbers[key] = read_memory_mib(value, at)
        elif key in numbers:
            numbers[key] = read_integer(value, at, _MAX_PORT if key == "port" else None)
        else:
            networking = _vetu_networking(value, at)
    return VetuIsolation(
        image=strings["image"],
        user=strings["user"],
        password=strings["password"],
        cpu=numbers["cpu"],
        memory=numbers["memory"],
        disk_size=numbers["disk_size"],
        port=numbers["port"],
        networking=networking,
    )


def _vetu_networking(node: Node, where: Where) -> VetuNetworking:
    pairs = read_pairs(node, where)
    check_keys(pairs, where, _VETU_NETWORKING_KEYS)
    if len(pairs.items) != 1:
        raise where.fail("must hold exactly one of host or bridged")
    key, value = pairs.items[0]
    at = where.at(key)
    if key == "host":
        if not (isinstance(value, Scalar) and value.value is None):
            check_keys(read_pairs(value, at), at, frozenset())
        return VetuHost()
    bridged = read_pairs(value, at)
    check_keys(bridged, at, frozenset({"interface"}))
    fields = dict(bridged.items)
    if "interface" not in fields:
        raise at.at("interface").fail("is required")
    return VetuBridged(read_string(fields["interface"], at.at("interface")))
