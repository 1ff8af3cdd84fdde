"""What of an ``AppendLogs`` chunk a store writes, given its offset and the task's log quota.

A task's logs together keep at most a quota of bytes: the chunk that crosses it is cut at it and
one line saying so follows; later chunks are acknowledged but dropped. The store measures what
the command's log and the task's logs hold inside its write transaction and applies this plan
there, so an append is one store call and two racing appends cannot both pass the quota.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.log_offsets import plan_append


@dataclass(frozen=True, slots=True)
class LogWrite:
    """What to append to a command's log; ``gap`` bytes before the chunk never arrived."""

    data: bytes = b""
    gap: int = 0
    quota_reached: bool = False


@dataclass(frozen=True, slots=True)
class AppendedLog:
    """What an append did: the command's log size afterwards, a gap, the quota crossed now."""

    size: int
    gap: int = 0
    quota_reached: bool = False


NO_QUOTA = 2**63 - 1
"""A quota no log reaches: ``plan_log_write`` with it applies the offset rule alone."""


def quota_line(quota_bytes: int, at_line_start: bool) -> bytes:
    """Return the line that ends a task's log once its quota is reached."""
    line = (
        f"--- cirrus: this task's log quota of {quota_bytes} bytes is reached; "
        "further output is dropped ---\n"
    )
    return (b"" if at_line_start else b"\n") + line.encode()


def plan_log_write(
    held: int, task_held: int, offset: int | None, data: bytes, quota_bytes: int
) -> LogWrite:
    """Plan a chunk sent at ``offset`` for a log of ``held`` bytes in a task of ``task_held``.

    Only the bytes beyond ``held`` are new (``plan_append``); of those, what fits the quota is
    written, and the quota line after the chunk that crosses it.
    """
    if quota_bytes < 1:
        raise ValueError(f"the log quota must be positive, got {quota_bytes}")
    plan = plan_append(held, offset, len(data))
    fresh = plan.fresh(len(data))
    room = quota_bytes - task_held
    if fresh == 0 or room <= 0:
        # Nothing new, or the quota line was written when the quota was reached.
        return LogWrite(gap=plan.gap)
    if fresh <= room:
        return LogWrite(data[plan.skip :], plan.gap)
    kept = data[plan.skip : plan.skip + room]
    return LogWrite(kept + quota_line(quota_bytes, kept.endswith(b"\n")), plan.gap, True)
