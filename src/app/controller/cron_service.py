"""Cron builds: each registered cron runs at its times (UTC), once, on one controller.

Every ``cron-check-seconds`` each controller looks for crons whose ``next_run`` has passed and
claims the run by moving ``next_run`` to the expression's next time after *now* (an
``UPDATE ... WHERE next_run = old``): the database lets one controller win, and a cron that
fell due several times while every controller was down runs once. The build is made at the
branch's head commit, with ``CIRRUS_CRON`` set to the cron's name.
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from cronsim import CronSim, CronSimError

from app.controller.forge_builds import ForgeBuilds, NoConfiguration
from domain.build import BuildConfigError
from domain.errors import CirrusError
from domain.forge_client import ForgeError
from domain.forge_store import CronJob, ForgeStore
from domain.ports import Clock
from domain.repositories import RepositoryStore
from domain.store import StoreError

log = logging.getLogger("cirrus.controller")


class CronExpressionError(CirrusError):
    """A cron expression cronsim cannot read; ``str()`` says why."""


def next_run(expression: str, after: float) -> float:
    """Return the first time (epoch seconds, UTC) after ``after`` that ``expression`` names."""
    moment = datetime.datetime.fromtimestamp(after, tz=datetime.UTC)
    try:
        return next(CronSim(expression, moment)).timestamp()
    except CronSimError as error:
        raise CronExpressionError(f"--expression {expression!r}: {error}") from None
    except StopIteration:
        raise CronExpressionError(f"--expression {expression!r} never falls due") from None


class CronRunner:
    """Runs the crons that fell due."""

    def __init__(
        self,
        forge_store: ForgeStore,
        repositories: RepositoryStore,
        builds: ForgeBuilds,
        clock: Clock,
        check_seconds: float,
    ) -> None:
        self._forge = forge_store
        self._repositories = repositories
        self._builds = builds
        self._clock = clock
        self._check_seconds = check_seconds

    async def run(self) -> None:
        """Check the crons until cancelled."""
        while True:
            try:
                await self.run_due()
            except StoreError as error:
                log.warning("crons: %s", error)
            await asyncio.sleep(self._check_seconds)

    async def run_due(self) -> list[str]:
        """Run each cron that fell due and that this controller claims; return the builds."""
        built = []
        for cron in await self._forge.list_crons():
            now = self._clock.now()
            if cron.next_run > now:
                continue
            if not await self._forge.claim_cron(cron, next_run(cron.expression, now), now):
                continue  # another controller runs it
            build_id = await self._run(cron)
            if build_id:
                built.append(build_id)
        return built

    async def _run(self, cron: CronJob) -> str:
        repository = await self._repositories.get_repository(cron.repository)
        error = ""
        build_id = ""
        if repository is None:
            error = f"repository {cron.repository} is not registered"
        else:
            try:
                build_id = (await self._builds.from_cron(repository, cron)).id
            except (ForgeError, NoConfiguration, BuildConfigError) as failure:
                error = str(failure)
            except CirrusError as failure:  # a configuration's limits, a secret
                error = str(failure)
        if error:
            log.warning("cron %s of %s: no build: %s", cron.name, cron.repository, error)
        else:
            log.info("cron %s of %s: build %s", cron.name, cron.repository, build_id)
        await self._forge.cron_ran(cron, build_id, error)
        return build_id
