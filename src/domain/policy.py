"""Security policy of a persistent worker (``security.allowed-isolations``), spec §5."""

from __future__ import annotations

from dataclasses import dataclass


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
