"""The system clock, as the ``Clock`` port."""

from __future__ import annotations

import time


class SystemClock:
    """Wall time and monotonic time of this machine."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds, for durations."""
        return time.monotonic()
