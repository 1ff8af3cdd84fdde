"""Scripts' processes are reaped through pidfds: exit codes and signals are seen, and no thread
is started per process (Python 3.11's default watcher starts one each)."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Iterator

import pytest

from adapters.host.child_watcher import pidfd_supported, watch_children_with_pidfds

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12+ picks pidfds itself"),
]


@pytest.fixture
def restored_watcher() -> Iterator[None]:
    """Put back the process's child watcher (a policy-wide setting) after the test."""
    previous = asyncio.get_child_watcher()
    try:
        yield
    finally:
        asyncio.set_child_watcher(previous)


def waiting_threads() -> list[str]:
    """Threads the threaded child watcher would have started (named ``asyncio-waitpid-N``)."""
    return [t.name for t in threading.enumerate() if "waitpid-" in t.name]


async def exit_code(command: str) -> int:
    process = await asyncio.create_subprocess_exec("/bin/sh", "-c", command)
    return await process.wait()


@pytest.mark.usefixtures("restored_watcher")
def test_children_are_reaped_through_pidfds_with_their_exit_codes_and_no_thread_each() -> None:
    assert pidfd_supported()  # the kernels the project runs on have pidfds (Linux 5.3+)

    async def main() -> tuple[bool, list[int], int, list[str]]:
        chosen = watch_children_with_pidfds()
        waits = [asyncio.create_task(exit_code(f"sleep 0.5; exit {n}")) for n in range(12)]
        await asyncio.sleep(0.2)  # started, and still sleeping
        threads = waiting_threads()  # none while twelve children are waited for
        codes = await asyncio.gather(*waits)
        killed = await asyncio.create_subprocess_exec("/bin/sleep", "30")
        killed.send_signal(signal.SIGKILL)
        return chosen, list(codes), await killed.wait(), threads

    chosen, codes, killed_code, threads = asyncio.run(main())
    assert threads == []
    assert codes == list(range(12))
    assert killed_code == -signal.SIGKILL
    assert chosen is True
    assert isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher)
