"""Creating a build from a configuration text, a source and an environment: the one path that
``POST /api/v1/builds``, forge webhooks and cron builds share.

Parse (in a thread: a ``.cirrus.star`` may compute or call ``http`` for a while, and the
controller keeps answering its workers meanwhile), store, cancel the builds it supersedes
(``auto_cancellation``), then schedule and offer its first tasks. Parsing errors are raised as
they are (``ConfigLimitError``, ``BuildConfigError``, ``RecursionError``) for the caller to
answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from app.controller.build_sources import build_environment, starlark_files
from app.controller.scheduler_service import SchedulerService
from domain.auto_cancellation import superseded_tasks
from domain.build import BuildSpec
from domain.cirrus_config.context import InstanceResolver, SecretReader
from domain.cirrus_config.limits import ConfigLimits
from domain.cirrus_config.parsing import ConfigParser, SourceFiles
from domain.source import BuildSource
from domain.store import BuildRecord, ControllerStore

log = logging.getLogger("cirrus.controller")

SUPERSEDED_BUILDS_CHECKED = 100
"""How many of a branch's latest builds a new build looks at for ``auto_cancellation``."""


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What a build is made of: the ``.cirrus.yml`` (and ``.cirrus.star``) texts, the
    submitted environment (it overrides the source's variables) and the source."""

    config: str
    environment: Mapping[str, str] = field(default_factory=dict)
    starlark: str = ""
    source: BuildSource | None = None
    submitted_by: str = ""  # the submitting token's name (the web builds list's "mine")


@dataclass(frozen=True, slots=True)
class ParseSettings:
    """How configurations are parsed on this controller: the parser (given by the composition
    root) and its file's keys."""

    parser: ConfigParser
    secrets: SecretReader
    instances: InstanceResolver | None = None
    starlark_http: bool = False
    starlark_files: SourceFiles | None = None
    limits: ConfigLimits = field(default_factory=ConfigLimits)
    build_filter: Callable[[BuildSpec], BuildSpec] | None = None


class BuildCreator:
    """Parses, stores and schedules builds."""

    def __init__(
        self, store: ControllerStore, scheduler: SchedulerService, settings: ParseSettings
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self.settings = settings

    async def parse(self, request: BuildRequest) -> BuildSpec:
        """Return the build's spec; ``ConfigLimitError``/``BuildConfigError`` say why not, and
        ``RecursionError`` means nested too deeply (a ``.cirrus.star`` can still build a value
        nested deeper than any YAML may be)."""
        settings, source = self.settings, request.source
        files = starlark_files(self._store, source, request.starlark, settings.starlark_files)
        async with files as readable:
            spec = await asyncio.to_thread(
                settings.parser,
                request.config,
                build_environment(source, request.environment),
                starlark=request.starlark,
                secrets=settings.secrets,
                instances=settings.instances,
                allow_http=settings.starlark_http,
                files=readable,
                limits=settings.limits,
                changed_files=None if source is None else source.changed_files,
            )
        if settings.build_filter is not None:
            spec = settings.build_filter(spec)
        return spec

    async def create(
        self,
        request: BuildRequest,
        *,
        before_scheduling: Callable[[BuildRecord], Awaitable[None]] | None = None,
    ) -> BuildRecord:
        """Parse, store and schedule a build; return it as it is then.

        ``before_scheduling`` runs once the build is stored and before any task is queued (a
        fork's build is held for approval there).
        """
        spec = await self.parse(request)
        build = await self._store.create_build(
            spec, request.source, submitted_by=request.submitted_by
        )
        if before_scheduling is not None:
            await before_scheduling(build)
        await self.cancel_superseded(build)
        await self._scheduler.advance_build(build.id)
        await self._scheduler.build_submitted(build.id)
        return await self._store.get_build(build.id) or build

    async def cancel_superseded(self, build: BuildRecord) -> None:
        """Cancel the ``auto_cancellation`` tasks of older builds of the same branch or PR."""
        source = build.source
        if not source.repository or not (source.branch or source.pr is not None):
            return
        older = await self._store.list_builds(
            source.repository, source.branch, None, SUPERSEDED_BUILDS_CHECKED, build.id
        )
        for task_id in superseded_tasks(build, older):
            log.info("task %s: cancelled, build %s supersedes it", task_id, build.id)
            await self._scheduler.cancel(task_id)
