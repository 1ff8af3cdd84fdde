"""``persistent_worker: {labels, resources, isolation}``: the one instance that names its worker
requirement itself, read as the original parser reads it (``pkg/parser/instance/isolation``).

``isolation`` holds one of ``container``, ``tart``, ``vetu`` or ``parallels`` (the last one
present wins, as there); no isolation means the task runs on the worker's host.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.cirrus_config.context import WorkerRequirement
from domain.cirrus_config.instance_fields import (
    Fields,
    float_map,
    read_fields,
    string_map,
    string_value,
)
from domain.cirrus_config.nodes import CirrusConfigError, Node, Scalar, Sequence
from domain.isolation import (
    ContainerIsolation,
    ContainerVolume,
    Isolation,
    NoneIsolation,
    ParallelsIsolation,
    Platform,
    TartIsolation,
    TartVolume,
    VetuBridged,
    VetuHost,
    VetuIsolation,
    VetuNetworking,
    freeze_str_map,
)

# What Cirrus fills in for a container that does not say.
CONTAINER_DEFAULT_CPU = 2.0
CONTAINER_DEFAULT_MEMORY_MIB = 4096

_ISOLATIONS = ("container", "tart", "vetu", "parallels")


def persistent_worker(node: Node, environment: Mapping[str, str]) -> WorkerRequirement:
    """Return the requirement a ``persistent_worker`` mapping states."""
    fields = read_fields(node, "persistent_worker", environment)
    labels_node = fields.node("labels")
    resources_node = fields.node("resources")
    isolation_node = fields.node("isolation")
    return WorkerRequirement(
        labels={} if labels_node is None else string_map(labels_node, "labels", environment),
        resources=(
            {} if resources_node is None else float_map(resources_node, "resources", environment)
        ),
        isolation=(
            NoneIsolation() if isolation_node is None else isolation(isolation_node, environment)
        ),
    )


def isolation(node: Node, environment: Mapping[str, str]) -> Isolation:
    """Return the isolation of an ``isolation`` mapping (none when it names no known type)."""
    fields = read_fields(node, "isolation", environment)
    chosen: Isolation = NoneIsolation()
    for name in fields.order:
        if name not in _ISOLATIONS:
            continue
        inner = read_fields(fields.values[name], f"isolation.{name}", environment)
        if name == "container":
            chosen = _container(inner)
        elif name == "tart":
            chosen = _tart(inner)
        elif name == "vetu":
            chosen = _vetu(inner)
        else:
            chosen = ParallelsIsolation(
                image=inner.text("image"),
                user=inner.text("user"),
                password=inner.text("password"),
                platform=_platform(inner),
            )
    return chosen


def _platform(fields: Fields) -> Platform:
    name = fields.text("platform", "linux")
    try:
        return Platform[name.upper()]
    except KeyError:
        node = fields.node("platform")
        raise CirrusConfigError(
            f"unsupported platform name: {name!r}", node.at if node else fields.at
        ) from None


def image_and_dockerfile(fields: Fields, image_field: str = "image") -> tuple[str, str]:
    """Return a container's image and Dockerfile: ``image:`` cancels an earlier ``dockerfile:``."""
    image = dockerfile = ""
    for name in fields.order:
        if name == image_field:
            image, dockerfile = fields.text(image_field), ""
        elif name == "dockerfile":
            dockerfile = fields.text("dockerfile")
    return image, dockerfile


def _container(fields: Fields) -> ContainerIsolation:
    image, dockerfile = image_and_dockerfile(fields)
    if dockerfile and not fields.environment.get("CIRRUS_ARCH"):
        # Cirrus refuses it: images built from one Dockerfile on two architectures would collide.
        node = fields.node("dockerfile")
        raise CirrusConfigError(
            'container with "dockerfile:" also needs a CIRRUS_ARCH environment variable',
            node.at if node else fields.at,
        )
    return ContainerIsolation(
        image=image,
        cpu=fields.float_value("cpu") or CONTAINER_DEFAULT_CPU,
        memory=fields.memory_value("memory") or CONTAINER_DEFAULT_MEMORY_MIB,
        volumes=tuple(_container_volume(item, fields.environment) for item in _volumes(fields)),
        dockerfile=dockerfile,
        docker_arguments=freeze_str_map(
            fields.string_map("docker_arguments") if dockerfile else {}
        ),
        platform=_platform(fields),
    )


def _container_volume(item: Node, environment: Mapping[str, str]) -> ContainerVolume:
    # ``source:target`` or ``source:target:ro``, as Cirrus and ``docker run -v`` write it.
    parts = string_value(item, "volumes", environment).split(":")
    if len(parts) == 2 and all(parts):
        return ContainerVolume(parts[0], parts[1])
    if len(parts) == 3 and parts[0] and parts[1] and parts[2] == "ro":
        return ContainerVolume(parts[0], parts[1], read_only=True)
    raise CirrusConfigError("volumes: expected source:target or source:target:ro", item.at)


def _tart(fields: Fields) -> TartIsolation:
    return TartIsolation(
        image=fields.text("image"),
        user=fields.text("user"),
        password=fields.text("password"),
        port=fields.int_value("port"),
        cpu=fields.int_value("cpu"),
        memory=fields.memory_value("memory"),
        softnet=fields.flag("softnet"),
        display=fields.text("display"),
        disk_size=fields.int_value("disk_size"),
        nested=fields.flag("nested"),
        volumes=tuple(_tart_volume(item, fields.environment) for item in _volumes(fields)),
    )


def _tart_volume(item: Node, environment: Mapping[str, str]) -> TartVolume:
    volume = read_fields(item, "volumes", environment)
    if volume.node("source") is None:
        raise CirrusConfigError("volumes: a volume needs a source", item.at)
    return TartVolume(
        name=volume.text("name"),
        source=volume.text("source"),
        target=volume.text("target"),
        read_only=volume.flag("readonly"),
    )


def _vetu(fields: Fields) -> VetuIsolation:
    return VetuIsolation(
        image=fields.text("image"),
        user=fields.text("user"),
        password=fields.text("password"),
        port=fields.int_value("port"),
        cpu=fields.int_value("cpu"),
        memory=fields.memory_value("memory"),
        disk_size=fields.int_value("disk_size"),
        networking=_vetu_networking(fields),
    )


def _vetu_networking(fields: Fields) -> VetuNetworking:
    node = fields.node("networking")
    if node is None:
        return None
    networking = read_fields(node, "networking", fields.environment)
    if networking.node("host") is not None:
        return VetuHost()
    bridged = networking.node("bridged")
    if bridged is not None:
        interface = read_fields(bridged, "bridged", fields.environment)
        return VetuBridged(interface.text("interface"))
    raise CirrusConfigError("networking: please specify the networking to use", node.at)


def _volumes(fields: Fields) -> tuple[Node, ...]:
    """The items of ``volumes:`` (none when it is absent or empty)."""
    node = fields.node("volumes")
    if node is None or (isinstance(node, Scalar) and node.value is None):
        return ()
    if isinstance(node, Sequence):
        return node.items
    raise CirrusConfigError("volumes: expected a list", node.at)
