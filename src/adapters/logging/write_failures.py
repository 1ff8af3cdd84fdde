"""What a log file that cannot be written (a full disk, say) prints on stderr, and how often.

``logging`` prints a ``--- Logging error ---`` traceback for every record that fails: a worker
on a full disk floods its stderr (32 tracebacks a minute when idle). A ``WriteFailureNotice``
says it once, in one line naming the file and the error, then again at most once per interval
with the count of records lost, and once more when the file can be written again.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# Often enough that an operator watching stderr sees the problem persists, rarely enough that
# it does not become the flood it replaces.
REPEAT_SECONDS = 60.0


class WriteFailureNotice:
    """Counts the records a log file lost and says so on stderr, throttled."""

    def __init__(
        self,
        path: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        stream: Callable[[], TextIO] | None = None,
        repeat_seconds: float = REPEAT_SECONDS,
    ) -> None:
        self.path = path
        self._clock = clock
        # Looked up at each message: stderr may be replaced after the handler is made.
        self._stream = stream if stream is not None else _stderr
        self._repeat_seconds = repeat_seconds
        self._last_said: float | None = None
        self.lost = 0

    @property
    def failing(self) -> bool:
        """Whether the last write failed (records have been lost since the last success)."""
        return self.lost > 0

    def failed(self, error: BaseException) -> None:
        """Count one lost record; say so now if this is the first, or the last was long ago."""
        first = not self.failing
        self.lost += 1
        now = self._clock()
        if first:
            self._say(
                f"cirrus: cannot write the log file {self.path}: {error}; log records are "
                "dropped until it can be written again (repeated at most once a minute)"
            )
        elif self._last_said is None or now - self._last_said >= self._repeat_seconds:
            self._say(
                f"cirrus: still cannot write the log file {self.path}: {error}; "
                f"{self.lost} log record(s) lost so far"
            )
        else:
            return
        self._last_said = now

    def lost_line(self) -> str:
        """The line written into the file once it can be written again."""
        return f"{self.lost} log record(s) were lost while {self.path} could not be written"

    def recovered(self) -> None:
        """The file was written again: say so (when records were lost) and start over."""
        if not self.failing:
            return
        self._say(f"cirrus: the log file {self.path} is written again; {self.lost_line()}")
        self.lost = 0
        self._last_said = None

    def _say(self, line: str) -> None:
        stream = self._stream()
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            # stderr itself gone (closed, a full disk too): nowhere left to say it.
            pass


def _stderr() -> TextIO:
    return sys.stderr
