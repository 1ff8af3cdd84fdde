"""Proto3 JSON of a worker's security policy: ``WorkerInfo.securityPolicy`` (this project's
addition to the Cirrus ``WorkerInfo``), also the form the controller's stores keep.

Shape (every part optional; message presence is meaningful, as for proto3 sub-messages)::

    {"allowedIsolations": {
        "none": {},
        "container": {"allowedImages": ["docker.io/library/*"],
                      "allowedVolumes": {"rules": [{"source": "/cache/*", "forceReadonly": true}]}},
        "tart": {"allowedImages": [...], "allowedVolumes": {"rules": [...]},
                 "forceSoftnet": true, "softnetAllow": ["10.0.0.0/8"]},
        "vetu": {"allowedImages": [...]},
        "parallels": {}}}

An absent ``securityPolicy`` or ``allowedIsolations`` allows every isolation (a worker without a
``security`` section, or one that reports no policy). Inside ``allowedIsolations`` an isolation is
allowed iff its member is present. A container's absent ``allowedVolumes`` allows every volume; a
Tart VM's refuses them all (the worker's own rules, ``domain.policy``).
"""

from __future__ import annotations

from adapters.twirp.json_fields import JsonReader, JsonWriter, as_reader
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

JsonObject = dict[str, object]


def encode_security_policy(policy: SecurityPolicy) -> JsonObject:
    """Write a ``SecurityPolicy`` (``{}`` when it allows everything by having no section)."""
    allowed = policy.allowed_isolations
    if allowed is None:
        return {}
    sections = JsonWriter()
    if allowed.none is not None:
        sections.put("none", {})
    if allowed.container is not None:
        sections.put("container", _container(allowed.container))
    if allowed.tart is not None:
        tart = allowed.tart
        sections.put(
            "tart",
            JsonWriter()
            .repeated("allowed_images", tart.allowed_images)
            .put("allowed_volumes", _volumes(tart.allowed_volumes))
            .boolean("force_softnet", tart.force_softnet)
            .repeated("softnet_allow", tart.softnet_allow)
            .build(),
        )
    if allowed.vetu is not None:
        sections.put(
            "vetu", JsonWriter().repeated("allowed_images", allowed.vetu.allowed_images).build()
        )
    if allowed.parallels is not None:
        sections.put("parallels", {})
    return JsonWriter().put("allowed_isolations", sections.build()).build()


def _container(policy: ContainerPolicy) -> JsonObject:
    writer = JsonWriter().repeated("allowed_images", policy.allowed_images)
    if policy.allowed_volumes is not None:
        writer.put("allowed_volumes", _volumes(policy.allowed_volumes))
    return writer.build()


def _volumes(rules: tuple[VolumeRule, ...]) -> JsonObject:
    return (
        JsonWriter()
        .repeated(
            "rules",
            [
                JsonWriter()
                .string("source", rule.source)
                .boolean("force_readonly", rule.force_readonly)
                .build()
                for rule in rules
            ],
        )
        .build()
    )


def decode_security_policy(body: object, path: str = "") -> SecurityPolicy:
    """Read a ``SecurityPolicy``."""
    sections = as_reader(body, path).message("allowed_isolations")
    if sections is None:
        return SecurityPolicy()
    container = sections.message("container")
    tart = sections.message("tart")
    vetu = sections.message("vetu")
    return SecurityPolicy(
        AllowedIsolations(
            none=NonePolicy() if sections.message("none") is not None else None,
            container=None
            if container is None
            else ContainerPolicy(
                allowed_images=container.strings("allowed_images"),
                allowed_volumes=_read_volumes(container.message("allowed_volumes")),
            ),
            tart=None
            if tart is None
            else TartPolicy(
                allowed_images=tart.strings("allowed_images"),
                allowed_volumes=_read_volumes(tart.message("allowed_volumes")) or (),
                force_softnet=tart.boolean("force_softnet"),
                softnet_allow=tart.strings("softnet_allow"),
            ),
            vetu=None
            if vetu is None
            else VetuPolicy(allowed_images=vetu.strings("allowed_images")),
            parallels=ParallelsPolicy() if sections.message("parallels") is not None else None,
        )
    )


def _read_volumes(volumes: JsonReader | None) -> tuple[VolumeRule, ...] | None:
    if volumes is None:
        return None
    return tuple(
        VolumeRule(rule.string("source"), rule.boolean("force_readonly"))
        for rule in volumes.messages("rules")
    )
