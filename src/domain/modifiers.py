"""Resource modifiers (``resource-modifiers``), spec §8."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.protocol import frozen_float_map


@dataclass(frozen=True, slots=True)
class ResourceModifier:
    """One ``resource-modifiers`` entry: extra ``run`` arguments for instances that match."""

    match: Mapping[str, float] = field(default_factory=frozen_float_map)
    run_args: tuple[str, ...] = ()
