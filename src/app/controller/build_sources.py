"""The source of a submitted build: checked, completed from the store, and what it changes.

A submission's ``"source"`` (``domain.source`` JSON) is checked field by field; a snapshot
source must name a stored snapshot, whose SHA-256 it gets. The build's environment is the
source's ``CIRRUS_*`` variables overridden by the submitted ones (as ``cirrus run -e`` did), and
a ``.cirrus.star`` of a snapshot build reads the snapshot's files. Also: the query of
``GET /api/v1/builds``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace

from app.controller.snapshot_files import open_snapshot_files
from domain.build import TaskStatus
from domain.cirrus_config.parsing import SourceFiles
from domain.source import BuildSource, SourceError, source_environment, source_from_json
from domain.store import MAX_LIST_LIMIT, ControllerStore

DEFAULT_LIST_LIMIT = 50


async def resolve_source(
    store: ControllerStore, data: Mapping[str, object] | None
) -> BuildSource | None:
    """Return the checked source of a submission (None without one); ``SourceError`` names
    a bad field or an unknown snapshot."""
    if data is None:
        return None
    source = source_from_json(data)
    if not source.snapshot:
        return source
    info = await store.get_snapshot(source.snapshot)
    if info is None:
        raise SourceError(
            f"source.snapshot: no snapshot {source.snapshot!r} on this controller "
            "(upload it first: POST /api/v1/snapshots)"
        )
    if source.snapshot_sha256 and source.snapshot_sha256.lower() != info.sha256:
        raise SourceError(
            f"source.snapshotSha256: {source.snapshot_sha256!r} is not the SHA-256 of snapshot "
            f"{info.id!r} ({info.sha256})"
        )
    return replace(source, snapshot_sha256=info.sha256)


def build_environment(source: BuildSource | None, environment: Mapping[str, str]) -> dict[str, str]:
    """Return a build's environment: the source's variables, overridden by the submitted ones."""
    derived = source_environment(source) if source is not None else {}
    return {**derived, **environment}


@contextlib.asynccontextmanager
async def starlark_files(
    store: ControllerStore,
    source: BuildSource | None,
    starlark: str,
    default: SourceFiles | None,
) -> AsyncIterator[SourceFiles | None]:
    """Yield what a ``.cirrus.star``'s ``fs`` reads: a snapshot build's files (only fetched
    when there is a ``.cirrus.star``), else ``default``."""
    if source is None or not source.snapshot or not starlark.strip():
        yield default
        return
    async with open_snapshot_files(store, source.snapshot) as files:
        yield files


@dataclass(frozen=True, slots=True)
class BuildQuery:
    """The filters of ``GET /api/v1/builds``."""

    repository: str = ""
    branch: str = ""
    status: TaskStatus | None = None
    limit: int = DEFAULT_LIST_LIMIT
    before: str = ""


def build_query(params: Mapping[str, str]) -> BuildQuery:
    """Return the query of ``GET /api/v1/builds``; ``ValueError`` names a bad parameter."""
    unknown = sorted(set(params) - {"repository", "branch", "status", "limit", "before"})
    if unknown:
        raise ValueError(f"unknown query parameter {unknown[0]!r}")
    status_text = params.get("status")
    status = None
    if status_text is not None:
        try:
            status = TaskStatus(status_text.upper())
        except ValueError:
            known = ", ".join(member.value for member in TaskStatus)
            raise ValueError(f"status: {status_text!r} is not one of {known}") from None
    limit_text = params.get("limit", str(DEFAULT_LIST_LIMIT))
    if not (limit_text.isascii() and limit_text.isdigit()) or not (
        1 <= int(limit_text) <= MAX_LIST_LIMIT
    ):
        raise ValueError(f"limit: {limit_text!r} is not a number from 1 to {MAX_LIST_LIMIT}")
    return BuildQuery(
        repository=params.get("repository", ""),
        branch=params.get("branch", ""),
        status=status,
        limit=int(limit_text),
        before=params.get("before", ""),
    )
