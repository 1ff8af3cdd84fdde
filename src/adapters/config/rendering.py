"""The effective worker configuration as a plain document, for ``cirrus worker validate``.

Keys follow the configuration file. Values are normalised: sizes in bytes, durations as
``<seconds>s``, memory as ``<MiB>M``. Tokens are shown only as ``***``. Without a ``security``
section every isolation is listed with an empty policy, which is what that absence means.
"""

from __future__ import annotations

from typing import Any

from adapters.config.effective import WorkerConfig
from domain.isolation import TartIsolation, VetuIsolation
from domain.modifiers import ResourceModifier
from domain.policy import AllowedIsolations, ContainerPolicy, SecurityPolicy, VolumeRule
from domain.protocol import StandbyParameters

MASK = "***"


def effective_document(config: WorkerConfig) -> dict[str, Any]:
    """Return the configuration as nested dicts and lists, secrets masked."""
    return {
        "name": config.name,
        "labels": dict(config.labels),
        "resources": dict(config.resources),
        "upstreams": [
            {"endpoint": upstream.endpoint, "token": MASK if upstream.token else ""}
            for upstream in config.upstreams
        ],
        "log": {
            "level": config.log.level,
            "file": config.log.file,
            "rotate-size": (
                f"{config.log.rotate_size_bytes} B"
                if config.log.rotate_size_bytes is not None
                else None
            ),
            "max-rotations": config.log.max_rotations,
        },
        "security": _security(config.security_policy()),
        "standby": _standby(config.standby()),
        "resource-modifiers": [_modifier(modifier) for modifier in config.resource_modifiers()],
        "tuning": {"vetu": {"mtu": config.tuning_vetu_mtu}},
        "tart-pre-pull": {
            "images": list(config.tart_pre_pull.images),
            "check-interval": f"{config.tart_pre_pull.check_interval_seconds}s",
            "jitter": f"{config.tart_pre_pull.jitter_seconds}s",
        },
    }


def _volume_rules(rules: tuple[VolumeRule, ...]) -> list[dict[str, Any]]:
    return [{"source": rule.source, "force-readonly": rule.force_readonly} for rule in rules]


def _container(policy: ContainerPolicy) -> dict[str, Any]:
    document: dict[str, Any] = {"allowed-images": list(policy.allowed_images)}
    if policy.allowed_volumes is not None:
        document["allowed-volumes"] = _volume_rules(policy.allowed_volumes)
    return document


def _security(policy: SecurityPolicy) -> dict[str, Any]:
    allowed = policy.allowed_isolations
    if allowed is None:
        allowed = AllowedIsolations()
        everything = True
    else:
        everything = False
    isolations: dict[str, Any] = {}
    if everything or allowed.none is not None:
        isolations["none"] = {}
    if everything or allowed.container is not None:
        isolations["container"] = _container(allowed.container or ContainerPolicy())
    if everything or allowed.tart is not None:
        tart = allowed.tart
        isolations["tart"] = {
            "allowed-images": list(tart.allowed_images) if tart else [],
            "allowed-volumes": _volume_rules(tart.allowed_volumes) if tart else [],
            "force-softnet": tart.force_softnet if tart else False,
            "softnet-allow": list(tart.softnet_allow) if tart else [],
        }
    if everything or allowed.vetu is not None:
        vetu = allowed.vetu
        isolations["vetu"] = {"allowed-images": list(vetu.allowed_images) if vetu else []}
    if everything or allowed.parallels is not None:
        isolations["parallels"] = {}
    return {"allowed-isolations": isolations}


def _standby(parameters: StandbyParameters | None) -> dict[str, Any] | None:
    if parameters is None:
        return None
    isolation = parameters.isolation
    described: dict[str, Any]
    if isinstance(isolation, TartIsolation):
        described = {
            "tart": {
                "image": isolation.image,
                "user": isolation.user,
                "password": MASK if isolation.password else "",
                "port": isolation.port,
                "cpu": isolation.cpu,
                "memory": f"{isolation.memory}M",
                "softnet": isolation.softnet,
                "display": isolation.display,
                "volumes": [
                    {
                        "name": volume.name,
                        "source": volume.source,
                        "target": volume.target,
                        "readonly": volume.read_only,
                    }
                    for volume in isolation.volumes
                ],
            }
        }
    elif isinstance(isolation, VetuIsolation):
        vetu: dict[str, Any] = {
            "image": isolation.image,
            "user": isolation.user,
            "password": MASK if isolation.password else "",
            "port": isolation.port,
            "cpu": isolation.cpu,
            "memory": f"{isolation.memory}M",
            "disk_size": isolation.disk_size,
        }
        if isolation.networking is not None:
            vetu["networking"] = {"host": {}}
        described = {"vetu": vetu}
    else:  # pragma: no cover - the loader only builds Tart and Vetu standbys
        described = {isolation.kind: {}}
    return {
        "resources": dict(parameters.resources),
        "isolation": described,
        "warmup": {
            "script": parameters.warmup.script,
            "timeout": f"{parameters.warmup.timeout_seconds}s",
        },
    }


def _modifier(modifier: ResourceModifier) -> dict[str, Any]:
    return {"match": dict(modifier.match), "append": {"run": list(modifier.run_args)}}
