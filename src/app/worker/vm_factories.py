"""The worker's Tart and Vetu factories, the state directory they record VMs in, start-up clean-up.

The VM adapter (asyncssh and its cryptography) is built, and imported, only when a VM is first
needed: a worker that never runs a VM does not carry it in memory. The composition root says how
to build it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from domain.errors import InstanceError
from domain.isolation import Isolation
from domain.ports import VmFactory, WarmableInstance

log = logging.getLogger("cirrus.worker")

# Overrides where the worker keeps its state (tests point it into their temporary directory).
STATE_DIR_ENV = "CIRRUS_WORKER_STATE_DIR"
VM_STATE_FILE = "vms.json"
VmTool = Literal["tart", "vetu"]
VM_TOOLS: tuple[VmTool, ...] = ("tart", "vetu")


def state_directory(env: Mapping[str, str] | None = None) -> Path:
    """``$CIRRUS_WORKER_STATE_DIR``, else ``$XDG_STATE_HOME/cirrus``, else ``~/.local/state/…``."""
    environ = os.environ if env is None else env
    override = environ.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    xdg = environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "cirrus"
    return Path.home() / ".local" / "state" / "cirrus"


class LazyVmFactory:
    """The VM factory of ``tool``, made by ``build`` (which imports the adapter) at first use."""

    def __init__(self, tool: str, build: Callable[[], VmFactory]) -> None:
        self._tool = tool
        self._build = build
        self._factory: VmFactory | None = None

    @property
    def tool(self) -> str:
        """``tart`` or ``vetu``."""
        return self._tool

    def _get(self) -> VmFactory:
        if self._factory is None:
            self._factory = self._build()
        return self._factory

    async def create(
        self,
        task_id: str,
        isolation: Isolation,
        *,
        run_args: Sequence[str] = (),
        ident: str | None = None,
        lazy_pull: bool = False,
        cli_env: Mapping[str, str] | None = None,
    ) -> WarmableInstance:
        """Boot a VM and connect to it; ``InstanceError`` if it cannot."""
        return await self._get().create(
            task_id,
            isolation,
            run_args=run_args,
            ident=ident,
            lazy_pull=lazy_pull,
            cli_env=cli_env,
        )

    async def cleanup_orphans(self) -> list[str]:
        """Delete the VMs that dead workers left behind; return their names."""
        return await self._get().cleanup_orphans()

    async def pull(self, image: str, cli_env: Mapping[str, str] | None = None) -> None:
        """Pull ``image`` ahead of use; ``InstanceError`` on failure."""
        await self._get().pull(image, cli_env)


async def remove_vm_leftovers(factories: Mapping[str, VmFactory]) -> list[str]:
    """Delete our orphaned VMs with every factory whose tool is installed; return their names.

    Runs before any VM of this worker exists. A failing tool is only a warning.
    """
    removed: list[str] = []
    for kind, factory in factories.items():
        if shutil.which(factory.tool) is None:
            continue
        try:
            deleted = await factory.cleanup_orphans()
        except InstanceError as error:
            log.warning("cannot look for %s VMs left by earlier workers: %s", kind, error)
            continue
        if deleted:
            log.info(
                "removed %d %s VM(s) left by earlier workers: %s",
                len(deleted),
                kind,
                " ".join(deleted),
            )
        removed += deleted
    return removed
