"""Security policy of a persistent worker (``security.allowed-isolations``), spec §5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from domain.errors import PolicyViolation
from domain.isolation import (
    ISOLATION_KINDS,
    ContainerIsolation,
    Isolation,
    TartIsolation,
    UnsetIsolation,
    VetuIsolation,
)
from domain.paths import clean_volume_source
from domain.quoting import go_quote
from domain.wildcard import match_any, match_simple


@dataclass(frozen=True, slots=True)
class VolumeRule:
    """One ``allowed-volumes`` entry: a wildcard on the cleaned source path."""

    source: str
    force_readonly: bool = False


@dataclass(frozen=True, slots=True)
class NonePolicy:
    """``allowed-isolations.none: {}``."""


@dataclass(frozen=True, slots=True)
class ParallelsPolicy:
    """``allowed-isolations.parallels: {}``."""


@dataclass(frozen=True, slots=True)
class ContainerPolicy:
    """``allowed-isolations.container``; ``allowed_volumes`` None means every volume is allowed."""

    allowed_images: tuple[str, ...] = ()
    allowed_volumes: tuple[VolumeRule, ...] | None = None


@dataclass(frozen=True, slots=True)
class TartPolicy:
    """``allowed-isolations.tart``; no ``allowed_volumes`` means every volume is refused."""

    allowed_images: tuple[str, ...] = ()
    allowed_volumes: tuple[VolumeRule, ...] = ()
    force_softnet: bool = False
    softnet_allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VetuPolicy:
    """``allowed-isolations.vetu``."""

    allowed_images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AllowedIsolations:
    """``allowed-isolations`` when present: a type is allowed iff its entry is not None."""

    none: NonePolicy | None = None
    container: ContainerPolicy | None = None
    tart: TartPolicy | None = None
    vetu: VetuPolicy | None = None
    parallels: ParallelsPolicy | None = None


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """The whole policy; ``allowed_isolations`` None (section absent) allows every isolation."""

    allowed_isolations: AllowedIsolations | None = None


# --- Decisions -----------------------------------------------------------------------------

INVALID_ISOLATION = "invalid isolation parameters: "
NOT_ALLOWED = "is not allowed by this Persistent Worker's security settings"

IsolationPolicy: TypeAlias = (
    NonePolicy | ContainerPolicy | TartPolicy | VetuPolicy | ParallelsPolicy
)

# Every isolation type with the empty policy it gets when ``allowed-isolations`` is absent.
_DEFAULT_POLICIES: dict[str, IsolationPolicy] = {
    "none": NonePolicy(),
    "container": ContainerPolicy(),
    "tart": TartPolicy(),
    "vetu": VetuPolicy(),
    "parallels": ParallelsPolicy(),
}


def isolation_policy(policy: SecurityPolicy, kind: str) -> IsolationPolicy | None:
    """Return the policy of an isolation type, or None if the type is not allowed at all."""
    allowed = policy.allowed_isolations
    if allowed is None:
        return _DEFAULT_POLICIES.get(kind)
    sections: dict[str, IsolationPolicy | None] = {
        "none": allowed.none,
        "container": allowed.container,
        "tart": allowed.tart,
        "vetu": allowed.vetu,
        "parallels": allowed.parallels,
    }
    return sections.get(kind)


def allowed_isolation_kinds(policy: SecurityPolicy) -> tuple[str, ...]:
    """Return the allowed isolation types in the order none, container, tart, vetu, parallels."""
    return tuple(kind for kind in ISOLATION_KINDS if isolation_policy(policy, kind) is not None)


def images_allowed(patterns: tuple[str, ...], image: str) -> bool:
    """Return whether an image passes ``allowed-images``; an empty list allows any image."""
    return not patterns or match_any(patterns, image)


def volume_allowed(rules: tuple[VolumeRule, ...], source: str, read_only: bool) -> bool:
    """Return whether a volume passes ``allowed-volumes`` (the first matching rule decides)."""
    cleaned = clean_volume_source(source)
    for rule in rules:
        if match_simple(rule.source, cleaned):
            return read_only or not rule.force_readonly
    return False


def tart_softnet(policy: SecurityPolicy, isolation: TartIsolation) -> tuple[bool, tuple[str, ...]]:
    """Return whether Softnet is on for a Tart task and the ``softnet-allow`` list it then gets."""
    tart = isolation_policy(policy, "tart")
    if not isinstance(tart, TartPolicy):
        # Tart is not allowed: the task never runs, and only its own wish is left to report.
        return isolation.softnet, ()
    enabled = isolation.softnet or tart.force_softnet
    return enabled, (tart.softnet_allow if enabled else ())


def check_isolation(policy: SecurityPolicy, isolation: Isolation) -> None:
    """Raise ``PolicyViolation`` with the exact wire message if the policy refuses ``isolation``."""
    if isinstance(isolation, UnsetIsolation):
        raise PolicyViolation(f"{INVALID_ISOLATION}unsupported isolation type <nil>")
    section = isolation_policy(policy, isolation.kind)
    if section is None:
        raise PolicyViolation(
            f"{INVALID_ISOLATION}{go_quote(isolation.kind)} isolation {NOT_ALLOWED}"
        )
    match isolation, section:
        case TartIsolation(), TartPolicy():
            _check_vm_image(section.allowed_images, isolation)
            for tart_volume in isolation.volumes:
                if not volume_allowed(
                    section.allowed_volumes, tart_volume.source, tart_volume.read_only
                ):
                    _refuse_volume(tart_volume.name or tart_volume.source)
        case VetuIsolation(), VetuPolicy():
            _check_vm_image(section.allowed_images, isolation)
        case ContainerIsolation(), ContainerPolicy():
            if not images_allowed(section.allowed_images, isolation.image):
                raise PolicyViolation(
                    f"{INVALID_ISOLATION}{go_quote('container')} image "
                    f"{go_quote(isolation.image)} {NOT_ALLOWED}"
                )
            _check_additional_containers(section, isolation)
            if section.allowed_volumes is not None:
                for container_volume in isolation.volumes:
                    if not volume_allowed(
                        section.allowed_volumes,
                        container_volume.source,
                        container_volume.read_only,
                    ):
                        _refuse_volume(container_volume.source)
        case _:
            pass  # ``none`` and ``parallels`` have nothing to check beyond being allowed.


def additional_container_refusal(policy: ContainerPolicy, isolation: ContainerIsolation) -> str:
    """Return why ``policy`` refuses one of the additional containers (empty: none refused).

    Their images pass the same ``allowed-images`` as the main image; a privileged one is never
    run (the task's own container is not privileged either).
    """
    for additional in isolation.additional_containers:
        if not images_allowed(policy.allowed_images, additional.image):
            return (
                f"additional container {go_quote(additional.name)} image "
                f"{go_quote(additional.image)} {NOT_ALLOWED}"
            )
        if additional.privileged:
            return f"privileged additional container {go_quote(additional.name)} {NOT_ALLOWED}"
    return ""


def _check_additional_containers(policy: ContainerPolicy, isolation: ContainerIsolation) -> None:
    refusal = additional_container_refusal(policy, isolation)
    if refusal:
        raise PolicyViolation(f"{INVALID_ISOLATION}{refusal}")


def _check_vm_image(patterns: tuple[str, ...], isolation: TartIsolation | VetuIsolation) -> None:
    """Refuse a Tart or Vetu image that no ``allowed-images`` pattern matches."""
    if not images_allowed(patterns, isolation.image):
        raise PolicyViolation(
            f"{INVALID_ISOLATION}{go_quote(isolation.kind)} VM image "
            f"{go_quote(isolation.image)} {NOT_ALLOWED}"
        )


def _refuse_volume(label: str) -> NoReturn:
    """Refuse a volume, naming it as the task did (its name, else its source as given)."""
    raise PolicyViolation(f"{INVALID_ISOLATION}volume {go_quote(label)} {NOT_ALLOWED}")
