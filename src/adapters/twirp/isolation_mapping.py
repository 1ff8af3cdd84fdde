"""The ``Isolation`` message and the worker's ``SecurityPolicy``: domain values <-> the
generated wire model, and their JSON (also the form the controller's stores keep).

Isolation presence: an absent isolation field means ``none`` (``NoneIsolation``), a present but
empty one (``{}``) is an ``UnsetIsolation``; a member is written even when it holds only
defaults (``{"none": {}}``, ``{"tart": {}}``). Policy presence: an absent ``allowedIsolations``
allows every isolation; inside it an isolation is allowed iff its member is present; a
container's absent ``allowedVolumes`` allows every volume, a Tart VM's refuses them all.
"""

from __future__ import annotations

from google.protobuf.message import Message

from adapters.twirp.wire_json import JsonObject, from_json, named, plain, to_json
from adapters.wire import cirrus_ci_service_pb2 as wire
from adapters.wire import cirrus_worker_additions_pb2 as additions
from domain.isolation import (
    AdditionalContainer,
    ContainerIsolation,
    ContainerVolume,
    Isolation,
    NoneIsolation,
    ParallelsIsolation,
    Platform,
    PortMapping,
    TartIsolation,
    TartVolume,
    UnsetIsolation,
    VetuBridged,
    VetuHost,
    VetuIsolation,
)
from domain.policy import (
    AllowedIsolations,
    ContainerPolicy,
    NonePolicy,
    ParallelsPolicy,
    SecurityPolicy,
    TartPolicy,
    VetuPolicy,
    VolumeRule,
)

_VOLUME = "source target read_only"
_TART_VOLUME = "name source target read_only cleanup"
_ADDITIONAL = "name image cpu memory container_port command readiness_command privileged host_port"
_CONTAINER = "image cpu memory dockerfile"
_VM = "image user password cpu memory disk_size port sync_time_over_ssh"
_TART = f"{_VM} softnet mount_temporary_working_directory_from_host display nested"
_PARALLELS = "image user password"


def _additional_to_proto(value: AdditionalContainer) -> wire.AdditionalContainer:
    return wire.AdditionalContainer(
        **named(value, _ADDITIONAL),
        environment=dict(value.environment),
        ports=[wire.PortMapping(**named(p, "container_port host_port")) for p in value.ports],
    )


def _additional_from_proto(message: wire.AdditionalContainer) -> AdditionalContainer:
    return AdditionalContainer(
        **plain(message, _ADDITIONAL),
        environment=tuple(message.environment.items()),
        ports=tuple(PortMapping(**plain(p, "container_port host_port")) for p in message.ports),
    )


def isolation_to_proto(isolation: Isolation) -> wire.Isolation:
    """Map an isolation to its message (one member set, or none for ``UnsetIsolation``)."""
    match isolation:
        case NoneIsolation():
            message = wire.Isolation()
            message.none.SetInParent()  # a member holding only defaults is still written
            return message
        case UnsetIsolation():
            return wire.Isolation()
        case ContainerIsolation():
            return wire.Isolation(
                container=wire.Isolation.Container(
                    **named(isolation, _CONTAINER),
                    volumes=[wire.Volume(**named(v, _VOLUME)) for v in isolation.volumes],
                    docker_arguments=dict(isolation.docker_arguments),
                    platform=wire.Platform.ValueType(isolation.platform),
                    additional_containers=[
                        _additional_to_proto(c) for c in isolation.additional_containers
                    ],
                )
            )
        case TartIsolation():
            return wire.Isolation(
                tart=wire.Isolation.Tart(
                    **named(isolation, _TART),
                    volumes=[
                        wire.Isolation.Tart.Volume(**named(v, _TART_VOLUME))
                        for v in isolation.volumes
                    ],
                )
            )
        case VetuIsolation():
            vetu = wire.Isolation.Vetu(**named(isolation, f"{_VM} standard_output_to_logs"))
            match isolation.networking:
                case VetuBridged(interface=interface):
                    vetu.bridged.interface = interface
                    vetu.bridged.SetInParent()
                case VetuHost():
                    vetu.host.SetInParent()
            return wire.Isolation(vetu=vetu)
        case ParallelsIsolation():
            return wire.Isolation(
                parallels=wire.Isolation.Parallels(
                    **named(isolation, _PARALLELS),
                    platform=wire.Platform.ValueType(isolation.platform),
                )
            )


def isolation_from_proto(message: wire.Isolation) -> Isolation:
    """Map an isolation message to the domain (no member: ``UnsetIsolation``)."""
    match message.WhichOneof("type"):
        case "none":
            return NoneIsolation()
        case "container":
            container = message.container
            return ContainerIsolation(
                **plain(container, _CONTAINER),
                volumes=tuple(ContainerVolume(**plain(v, _VOLUME)) for v in container.volumes),
                docker_arguments=tuple(container.docker_arguments.items()),
                platform=Platform(container.platform),
                additional_containers=tuple(
                    _additional_from_proto(c) for c in container.additional_containers
                ),
            )
        case "tart":
            return TartIsolation(
                **plain(message.tart, _TART),
                volumes=tuple(TartVolume(**plain(v, _TART_VOLUME)) for v in message.tart.volumes),
            )
        case "vetu":
            vetu = message.vetu
            networking = vetu.WhichOneof("networking")
            return VetuIsolation(
                **plain(vetu, f"{_VM} standard_output_to_logs"),
                networking=VetuBridged(vetu.bridged.interface)
                if networking == "bridged"
                else (VetuHost() if networking == "host" else None),
            )
        case "parallels":
            parallels = message.parallels
            return ParallelsIsolation(
                **plain(parallels, _PARALLELS), platform=Platform(parallels.platform)
            )
        case _:
            return UnsetIsolation()


def isolation_field(holder: Message, name: str = "isolation") -> Isolation:
    """Read the isolation field of a message: absent means ``none``."""
    return isolation_from_proto(getattr(holder, name)) if holder.HasField(name) else NoneIsolation()


def encode_isolation(isolation: Isolation) -> JsonObject:
    """Write an ``Isolation``: its one set member, or ``{}`` for an unset one."""
    return to_json(isolation_to_proto(isolation))


def decode_isolation(body: object, path: str = "") -> Isolation:
    """Read a present ``Isolation`` message (``{}`` is an ``UnsetIsolation``)."""
    return isolation_from_proto(from_json(body, wire.Isolation, path))


def _rules(rules: tuple[VolumeRule, ...]) -> additions.VolumeRules:
    return additions.VolumeRules(
        rules=[
            additions.VolumeRule(source=r.source, force_readonly=r.force_readonly) for r in rules
        ]
    )


def policy_to_proto(policy: SecurityPolicy) -> additions.SecurityPolicy | None:
    """Map a policy to its message; ``None`` when it allows everything by having no section."""
    allowed = policy.allowed_isolations
    if allowed is None:
        return None
    sections = additions.AllowedIsolations()
    if allowed.none is not None:
        sections.none.SetInParent()
    if allowed.container is not None:
        sections.container.allowed_images.extend(allowed.container.allowed_images)
        sections.container.SetInParent()
        if allowed.container.allowed_volumes is not None:
            sections.container.allowed_volumes.CopyFrom(_rules(allowed.container.allowed_volumes))
    if (tart := allowed.tart) is not None:
        sections.tart.CopyFrom(
            additions.TartPolicy(
                allowed_images=tart.allowed_images,
                allowed_volumes=_rules(tart.allowed_volumes),
                force_softnet=tart.force_softnet,
                softnet_allow=tart.softnet_allow,
            )
        )
    if allowed.vetu is not None:
        sections.vetu.CopyFrom(additions.VetuPolicy(allowed_images=allowed.vetu.allowed_images))
    if allowed.parallels is not None:
        sections.parallels.SetInParent()
    return additions.SecurityPolicy(allowed_isolations=sections)


def _read_rules(rules: additions.VolumeRules) -> tuple[VolumeRule, ...]:
    return tuple(VolumeRule(r.source, r.force_readonly) for r in rules.rules)


def policy_from_proto(message: additions.SecurityPolicy) -> SecurityPolicy:
    """Map a policy message to the domain."""
    if not message.HasField("allowed_isolations"):
        return SecurityPolicy()
    sections = message.allowed_isolations
    container, tart = sections.container, sections.tart
    return SecurityPolicy(
        AllowedIsolations(
            none=NonePolicy() if sections.HasField("none") else None,
            container=ContainerPolicy(
                allowed_images=tuple(container.allowed_images),
                allowed_volumes=_read_rules(container.allowed_volumes)
                if container.HasField("allowed_volumes")
                else None,
            )
            if sections.HasField("container")
            else None,
            tart=TartPolicy(
                allowed_images=tuple(tart.allowed_images),
                allowed_volumes=_read_rules(tart.allowed_volumes),
                force_softnet=tart.force_softnet,
                softnet_allow=tuple(tart.softnet_allow),
            )
            if sections.HasField("tart")
            else None,
            vetu=VetuPolicy(allowed_images=tuple(sections.vetu.allowed_images))
            if sections.HasField("vetu")
            else None,
            parallels=ParallelsPolicy() if sections.HasField("parallels") else None,
        )
    )


def encode_security_policy(policy: SecurityPolicy) -> JsonObject:
    """Write a ``SecurityPolicy`` (``{}`` when it allows everything by having no section)."""
    message = policy_to_proto(policy)
    return {} if message is None else to_json(message)


def decode_security_policy(body: object, path: str = "") -> SecurityPolicy:
    """Read a ``SecurityPolicy``."""
    return policy_from_proto(from_json(body, additions.SecurityPolicy, path))
