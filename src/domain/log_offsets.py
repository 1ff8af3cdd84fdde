"""Which bytes of an ``AppendLogs`` chunk are new, given the offset the worker sent it at.

A worker sends each chunk of a command's log with the byte offset of its first byte (the sum of
the lengths of the earlier chunks). A chunk retried after a timeout, whose first attempt was
applied after all, then overlaps what the controller holds: only its tail beyond that is new.
An offset past what is held is a gap (earlier bytes never arrived): the chunk is kept whole, as
losing more output would not help, and the caller says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogAppend:
    """How to apply a chunk: skip its first ``skip`` bytes; ``gap`` bytes before it are missing."""

    skip: int = 0
    gap: int = 0

    def fresh(self, length: int) -> int:
        """Return how many bytes of a chunk of ``length`` bytes are new."""
        return length - self.skip


def plan_append(held: int, offset: int | None, length: int) -> LogAppend:
    """Plan the append of ``length`` bytes sent at ``offset`` to a log holding ``held`` bytes.

    ``offset`` ``None`` (a worker that sends none) appends the whole chunk, as before offsets.
    """
    if held < 0 or length < 0 or (offset is not None and offset < 0):
        raise ValueError(f"negative log sizes: held={held}, offset={offset}, length={length}")
    if offset is None:
        return LogAppend()
    if offset >= held:
        return LogAppend(gap=offset - held)
    return LogAppend(skip=min(held - offset, length))
