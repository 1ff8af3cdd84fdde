"""Resource accounting (spec §6): user-defined ``name -> float`` maps, summed and compared.

The worker does not enforce resources for tasks; scheduling within limits is the controller's
job. These functions only compute what the worker reports (``resources_in_use``) and decide
whether a standby instance fits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def _exact_sum(values: list[float]) -> float:
    """Return the correctly rounded sum of ``values``, so the order of addends never matters."""
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        # fsum refuses an intermediate overflow and ``inf + -inf``; plain addition gives the
        # IEEE answer (``inf`` or ``nan``) instead of failing the poll loop.
        return sum(values, 0.0)


def sum_resources(maps: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Return the per-key sum of resource maps (a key absent from a map counts as 0)."""
    addends: dict[str, list[float]] = {}
    for resources in maps:
        for key, value in resources.items():
            addends.setdefault(key, []).append(float(value))
    return {key: _exact_sum(values) for key, values in addends.items()}


def free_resources(total: Mapping[str, float], in_use: Mapping[str, float]) -> dict[str, float]:
    """Return totals minus in use, per key; may go negative (keys only in use are negative)."""
    free = {key: float(value) - float(in_use.get(key, 0.0)) for key, value in total.items()}
    for key, value in in_use.items():
        if key not in total:
            free[key] = -float(value)
    return free


def fits(free: Mapping[str, float], requested: Mapping[str, float]) -> bool:
    """Return whether every requested amount is free; a key missing from ``free`` counts as 0."""
    return all(float(free.get(key, 0.0)) >= float(value) for key, value in requested.items())
