"""A failed script's exit status, carried as the last line of its command's log.

The wire's ``CommandResult`` has no exit code (only a status and ``signaled_to_exit``), so the
worker ends a script's log with ``exit status N`` when N is not 0, and whoever shows the log
(``cirrus build ... --follow``) reads it back from there.
"""

from __future__ import annotations

import re

from domain.ports import OutputSink

_LINE = re.compile(r"exit status (\d+)")


def exit_status_line(code: int) -> str:
    """The log line for a script that exited with ``code``."""
    return f"exit status {code}"


def exit_status_in(line: str) -> int | None:
    """The exit status ``line`` reports, or None when it is not an exit status line."""
    match = _LINE.fullmatch(line.strip())
    return int(match.group(1)) if match else None


class LineEndTracker:
    """An ``OutputSink`` passing bytes on, remembering whether the output ends a line."""

    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink
        self.at_line_start = True

    async def write(self, data: bytes) -> None:
        """Pass ``data`` on."""
        if data:
            self.at_line_start = data.endswith(b"\n")
        await self._sink.write(data)

    async def exit_status(self, code: int) -> None:
        """Write the exit status line, on a line of its own."""
        prefix = "" if self.at_line_start else "\n"
        await self.write(f"{prefix}{exit_status_line(code)}\n".encode())
