"""``additional_containers:`` of a ``container:`` instance: service containers beside the task's.

Each becomes an ``AdditionalContainer`` of the task's container isolation, run by the worker
next to the task's container and sharing its network namespace (the task reaches a service on
``localhost:<port>``). As on Cirrus CI: ``image`` is required; ``name`` names it; ``port`` is a
container port (``3306``) or a ``host:container`` pair (``8080:80``); ``ports`` a list of them;
``cpu`` and ``memory`` default to 0.5 CPU and 512 MiB; ``env``/``environment`` is a map;
``command`` and ``readiness_command`` are a list of arguments or a string split into words as a
shell would (no shell runs them); ``privileged`` is a flag. Values are expanded with the task's
environment, like every instance field.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from domain.cirrus_config.instance_fields import Fields, read_fields, string_value
from domain.cirrus_config.nodes import CirrusConfigError, Node, Scalar, Sequence
from domain.isolation import AdditionalContainer, PortMapping

DEFAULT_CPU = 0.5
DEFAULT_MEMORY = 512  # MiB
_FIELD = "additional_containers"
_MAX_PORT = 65535


def additional_containers(fields: Fields) -> tuple[AdditionalContainer, ...]:
    """Return the ``additional_containers`` of a container instance (none when absent)."""
    node = fields.node(_FIELD)
    if node is None or (isinstance(node, Scalar) and node.value is None):
        return ()
    if not isinstance(node, Sequence):
        raise CirrusConfigError(f"{_FIELD}: expected a list", node.at)
    containers = tuple(
        _additional_container(item, index, fields.environment)
        for index, item in enumerate(node.items)
    )
    names = [container.name for container in containers]
    for item, container in zip(node.items, containers, strict=True):
        if names.count(container.name) > 1:
            raise CirrusConfigError(
                f"{_FIELD}: the name {container.name!r} is used more than once", item.at
            )
    return containers


def _additional_container(
    node: Node, index: int, environment: Mapping[str, str]
) -> AdditionalContainer:
    fields = read_fields(node, _FIELD, environment)
    if fields.node("image") is None:
        raise CirrusConfigError(f'{_FIELD}: required field "image" was not set', node.at)
    image = fields.text("image")
    if not image:
        raise CirrusConfigError(f'{_FIELD}: field "image" is empty', node.at)
    environment_node = "environment" if fields.node("environment") is not None else "env"
    ports = tuple(_ports(fields))
    return AdditionalContainer(
        name=fields.text("name") or f"additional-container-{index + 1}",
        image=image,
        cpu=fields.float_value("cpu", DEFAULT_CPU),
        memory=fields.memory_value("memory", DEFAULT_MEMORY),
        container_port=ports[0].container_port if ports else 0,
        host_port=ports[0].host_port if ports else 0,
        ports=ports,
        environment=tuple(fields.string_map(environment_node).items()),
        command=_arguments(fields, "command"),
        readiness_command=_arguments(fields, "readiness_command"),
        privileged=fields.flag("privileged"),
    )


def _ports(fields: Fields) -> list[PortMapping]:
    specs: list[tuple[Node, str]] = []
    port = fields.node("port")
    if port is not None:
        specs.append((port, string_value(port, "port", fields.environment)))
    ports = fields.node("ports")
    if ports is not None and not (isinstance(ports, Scalar) and ports.value is None):
        items = ports.items if isinstance(ports, Sequence) else (ports,)
        specs += [(item, string_value(item, "ports", fields.environment)) for item in items]
    return [_port_mapping(text, node) for node, text in specs]


def _port_mapping(text: str, node: Node) -> PortMapping:
    host, _, container = text.strip().rpartition(":")
    numbers = [part for part in (host, container) if part]
    if not numbers or not all(part.isdecimal() and 0 < int(part) <= _MAX_PORT for part in numbers):
        raise CirrusConfigError(
            f"{_FIELD}: port {text!r} is neither a port nor a host:container pair", node.at
        )
    return PortMapping(container_port=int(container), host_port=int(host) if host else 0)


def _arguments(fields: Fields, name: str) -> tuple[str, ...]:
    node = fields.node(name)
    if node is None or (isinstance(node, Scalar) and node.value is None):
        return ()
    if isinstance(node, Sequence):
        return tuple(string_value(item, name, fields.environment) for item in node.items)
    text = string_value(node, name, fields.environment)
    try:
        return tuple(shlex.split(text))
    except ValueError as error:
        raise CirrusConfigError(f"{_FIELD}: {name}: {error}", node.at) from None
