"""Resource modifiers (``resource-modifiers``), spec §8."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from domain.protocol import frozen_float_map


@dataclass(frozen=True, slots=True)
class ResourceModifier:
    """One ``resource-modifiers`` entry: extra ``run`` arguments for instances that match."""

    match: Mapping[str, float] = field(default_factory=frozen_float_map)
    run_args: tuple[str, ...] = ()


def modifier_matches(modifier: ResourceModifier, requested: Mapping[str, float]) -> bool:
    """Return whether a request fits the modifier: every ``match`` key requested, at most its value.

    Requested keys absent from ``match`` are ignored, and an empty ``match`` matches anything. This
    is "request <= capacity" on the modifier's keys, not equality (spec §8, §12.3).
    """
    return all(
        key in requested and float(requested[key]) <= float(capacity)
        for key, capacity in modifier.match.items()
    )


class ModifierPool:
    """The configured modifiers, each held by at most one owner (a task or the standby) at a time.

    Unlike the original, which keyed nothing and released a modifier only when a Vetu instance
    closed (spec §12.2), every holding is tied to an owner id: whoever acquired a modifier releases
    it through that id, whatever the isolation and whether or not its instance was ever created.
    Not thread-safe: call it from one event loop.
    """

    def __init__(self, modifiers: Sequence[ResourceModifier]) -> None:
        self._modifiers: tuple[ResourceModifier, ...] = tuple(modifiers)
        # Indices, not modifier values: two equal configured entries are still two devices.
        self._index_by_owner: dict[str, int] = {}
        self._owner_by_index: dict[int, str] = {}

    @property
    def modifiers(self) -> tuple[ResourceModifier, ...]:
        """Return the configured modifiers in configuration order."""
        return self._modifiers

    def acquire(self, owner: str, requested: Mapping[str, float]) -> ResourceModifier | None:
        """Hold and return the first free modifier matching ``requested``, in configuration order.

        An owner that already holds a modifier gets that same one back and never a second one.
        None means no modifier is free and matching; the instance then runs without extra args.
        """
        held = self._index_by_owner.get(owner)
        if held is not None:
            return self._modifiers[held]
        for index, modifier in enumerate(self._modifiers):
            if index not in self._owner_by_index and modifier_matches(modifier, requested):
                self._index_by_owner[owner] = index
                self._owner_by_index[index] = owner
                return modifier
        return None

    def release(self, owner: str) -> None:
        """Free what ``owner`` holds; releasing twice or for an unknown owner does nothing."""
        index = self._index_by_owner.pop(owner, None)
        if index is not None:
            del self._owner_by_index[index]

    def transfer(self, from_owner: str, to_owner: str) -> None:
        """Hand ``from_owner``'s modifier to ``to_owner`` (a task taking over the standby VM).

        Nothing happens when ``from_owner`` holds none. Raises ValueError when ``to_owner``
        already holds a different modifier, since an owner never holds two.
        """
        index = self._index_by_owner.get(from_owner)
        if index is None or from_owner == to_owner:
            return
        if to_owner in self._index_by_owner:
            raise ValueError(f"{to_owner!r} already holds a resource modifier")
        del self._index_by_owner[from_owner]
        self._index_by_owner[to_owner] = index
        self._owner_by_index[index] = to_owner

    def held(self) -> dict[str, ResourceModifier]:
        """Return owner -> held modifier, for leak checks and diagnostics."""
        return {owner: self._modifiers[index] for owner, index in self._index_by_owner.items()}
