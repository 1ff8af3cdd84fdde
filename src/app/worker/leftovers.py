"""Removal, at worker start, of the containers that dead workers of this host left behind.

A worker killed with SIGKILL (or a crashed host) cannot remove its task containers; the next worker
that may run containers removes those whose worker process no longer exists. Containers of a
living worker (another one on this host, or this one) are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.errors import InstanceError
from domain.isolation import ContainerIsolation
from domain.policy import SecurityPolicy, isolation_policy
from domain.worker_tools import LeftoverRemover

log = logging.getLogger("cirrus.worker")


async def remove_container_leftovers(
    policy: SecurityPolicy, remove_leftovers: LeftoverRemover
) -> list[str]:
    """Remove orphaned task containers when ``policy`` allows containers; return their ids.

    ``remove_leftovers`` removes them with the container engine. No engine, or one that fails,
    is only a warning: the worker runs on without it.
    """
    if isolation_policy(policy, ContainerIsolation.kind) is None:
        return []
    try:
        removed = await remove_leftovers(_process_exists)
    except InstanceError as error:
        log.warning("cannot look for containers left by earlier workers: %s", error)
        return []
    if removed:
        log.info(
            "removed %d container(s) left by earlier workers: %s", len(removed), " ".join(removed)
        )
    return removed


def _process_exists(pid: int) -> bool:
    # psutil (about 0.7 MB) is imported only when a leftover container names a worker pid.
    import psutil

    return psutil.pid_exists(pid)


async def cancel_quietly(task: asyncio.Task[object]) -> None:
    """Cancel ``task`` if it still runs and wait for it; its own errors were already logged."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
