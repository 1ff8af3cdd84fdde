"""``cirrus worker pause [--wait]`` and ``resume``: set the disabled flag on every upstream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from app.worker.retry import Sleep
from domain.errors import ControllerError
from domain.ports import ControllerClient

log = logging.getLogger("cirrus.worker")

WAIT_INTERVAL = 10.0


class PauseFailed(Exception):
    """A controller refused or could not be reached; ``str()`` is the one-line reason."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Where the disabled flag was set, and where the worker is not registered."""

    changed: tuple[str, ...] = ()
    unregistered: tuple[str, ...] = ()


async def set_disabled(clients: Sequence[ControllerClient], disabled: bool) -> StatusChange:
    """Send ``UpdateStatus{disabled}`` to every upstream, check the answer, say where it held."""
    changed: list[str] = []
    unregistered: list[str] = []
    for client in clients:
        try:
            answered = await client.update_status(disabled)
        except ControllerError as error:
            if error.code == "not_found":
                # Not registered there (a wrong name, often the host name by default): the
                # command says so instead of reporting success.
                unregistered.append(client.endpoint)
                continue
            raise PauseFailed(f"{client.endpoint}: {error}") from error
        if answered != disabled:
            raise PauseFailed(
                f"failed to set disabled state on upstream {client.endpoint}, "
                f"expected {str(disabled).lower()}, got {str(answered).lower()}"
            )
        changed.append(client.endpoint)
    return StatusChange(tuple(changed), tuple(unregistered))


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
