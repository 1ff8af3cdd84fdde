"""Hand-written fakes of the worker host's tools (``domain.worker_tools``) for unit tests.

Nothing touches the disk or the network: a blob download finds nothing, archives fail, the
workspace is a name only, and no task has a source. Every use is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from domain.ports import OutputSink
from domain.worker_tools import BlobMissingError, CacheArchiveError, WorkerTools


@dataclass
class ToolCalls:
    """What the use cases asked of the tools, in order, and the unmaskable-secret warnings."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    unmaskable: list[int] = field(default_factory=list)


class FakeBlobs:
    """A blob transport that stores nothing: downloads find no blob, uploads are recorded."""

    def __init__(self, endpoint: str, record: ToolCalls) -> None:
        self._endpoint = endpoint
        self._record = record

    async def download(self, url: str, target: str, headers: Mapping[str, str] = {}) -> int:
        """Record the call; there is never a blob."""
        self._record.calls.append(("download", self._endpoint, url))
        raise BlobMissingError(f"nothing at {url}")

    async def upload(self, url: str, source: str, headers: Mapping[str, str] = {}) -> None:
        """Record the call."""
        self._record.calls.append(("upload", self._endpoint, url, source))


class FakeArchives:
    """Cache archives that cannot be made or read; every folder counts as empty."""

    def __init__(self, record: ToolCalls) -> None:
        self._record = record

    def write_archive(self, base: str, members: Sequence[str], target: str) -> int:
        """Fail: the fake has no archives."""
        raise CacheArchiveError("no archives in unit tests")

    def read_archive(self, source: str, target: str) -> int:
        """Fail: the fake has no archives."""
        raise CacheArchiveError("no archives in unit tests")

    def tree_digest(self, base: str, members: Sequence[str]) -> str:
        """A digest of the names only."""
        return "|".join(sorted(members))

    def folder_is_empty(self, path: str) -> bool:
        """Every folder is empty."""
        return True


def fake_tools(record: ToolCalls | None = None) -> WorkerTools:
    """Return tools that record into ``record`` and touch nothing of the host."""
    calls = record if record is not None else ToolCalls()

    @asynccontextmanager
    async def workspace(task_id: str) -> AsyncIterator[str]:
        calls.calls.append(("workspace", task_id))
        yield f"/fake-workspace/{task_id}"

    async def fetch_source(
        env: Mapping[str, str],
        directory: str,
        output: OutputSink,
        *,
        endpoint: str,
        headers: Mapping[str, str],
    ) -> bool:
        calls.calls.append(("fetch_source", directory, endpoint))
        return False

    return WorkerTools(
        blobs=lambda endpoint: FakeBlobs(endpoint, calls),
        archives=FakeArchives(calls),
        workspace=workspace,
        fetch_source=fetch_source,
        warn_unmaskable=calls.unmaskable.append,
    )
