"""``cirrus worker pause [--wait]`` and ``resume``: set the disabled flag on every upstream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from app.worker.retry import Sleep
from domain.errors import ControllerError
from domain.ports import ControllerClient

log = logging.getLogger("cirrus.worker")

WAIT_INTERVAL = 10.0


class PauseFailed(Exception):
    """A controller refused or could not be reached; ``str()`` is the one-line reason."""


async def set_disabled(clients: Sequence[ControllerClient], disabled: bool) -> None:
    """Send ``UpdateStatus{disabled}`` to every upstream and check the answer."""
    for client in clients:
        try:
            answered = await client.update_status(disabled)
        except ControllerError as error:
            if error.code == "not_found":
                # The worker has not registered yet: nothing to change there.
                continue
            raise PauseFailed(f"{client.endpoint}: {error}") from error
        if answered != disabled:
            raise PauseFailed(
                f"failed to set disabled state on upstream {client.endpoint}, "
                f"expected {str(disabled).lower()}, got {str(answered).lower()}"
            )


async def wait_until_idle(
    clients: Sequence[ControllerClient],
    *,
    interval: float = WAIT_INTERVAL,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Ask each upstream until it reports no running task of this worker."""
    for client in clients:
        while True:
            try:
                status = await client.query_running_tasks()
            except ControllerError as error:
                raise PauseFailed(
                    f"upstream {client.endpoint} failed while waiting: {error}"
                ) from error
            if not status.running_tasks:
                break
            log.info("%d task(s) still running on %s", len(status.running_tasks), client.endpoint)
            await sleep(interval)
