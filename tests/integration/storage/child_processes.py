"""Running store clients in child processes: start them, collect one report each, clean up."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import TypeVar

import pytest

T = TypeVar("T")


async def reports_of(
    processes: Sequence[BaseProcess],
    results: multiprocessing.Queue[T],
    deadline: float,
    what: str,
) -> list[T]:
    """Start ``processes`` and return the one report each puts on ``results``, in arrival order.

    Each must report within ``deadline`` seconds and exit with status 0; a late one fails the
    test naming ``what``. Whatever happens, no process outlives the call and the queue is closed.
    """
    for process in processes:
        process.start()
    try:
        reports = [await asyncio.to_thread(results.get, True, deadline) for _ in processes]
        for process in processes:
            await asyncio.to_thread(process.join, deadline)
            assert process.exitcode == 0
    except queue.Empty:
        pytest.fail(f"{what} did not report in time")
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    return reports
