"""Ports of the worker host's tools that a task's commands use besides its instance.

Cache archives and artifact files move between the worker host and blob URLs, cache folders are
packed and unpacked on the host, a per-task scratch workspace holds them meanwhile, and the
``clone`` instruction fetches the source there. The worker's composition root builds the
adapters and hands them to the use cases as one ``WorkerTools``. Paths are plain strings here
(the domain names no file system). Errors the use cases catch::

    CirrusError
    ├── BlobTransferError      a blob could not be uploaded or downloaded
    │   └── BlobMissingError   the blob URL answered 404
    └── CacheArchiveError      a cache archive could not be written or read
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from domain.errors import CirrusError
from domain.ports import OutputSink


class BlobTransferError(CirrusError):
    """A blob could not be uploaded or downloaded."""


class BlobMissingError(BlobTransferError):
    """The blob URL answered 404: there is nothing there."""


class CacheArchiveError(CirrusError):
    """A cache archive could not be written or read."""


class BlobTransport(Protocol):
    """Streams blob bytes between a file of the worker host and a blob URL of one controller."""

    async def download(self, url: str, target: str, headers: Mapping[str, str] = ...) -> int:
        """GET ``url`` into the file ``target``; return the bytes written."""
        ...

    async def upload(self, url: str, source: str, headers: Mapping[str, str] = ...) -> None:
        """PUT the file ``source`` to ``url``."""
        ...


class CacheArchives(Protocol):
    """Cache archives of folders on the worker host, and the digest of their content."""

    def write_archive(self, base: str, members: Sequence[str], target: str) -> int:
        """Archive ``members`` (relative to ``base``) into ``target``; return its size."""
        ...

    def read_archive(self, source: str, target: str) -> int:
        """Unpack the archive ``source`` into the folder ``target``; return the file count."""
        ...

    def tree_digest(self, base: str, members: Sequence[str]) -> str:
        """The content digest of ``members`` under ``base`` (not times or owners)."""
        ...

    def folder_is_empty(self, path: str) -> bool:
        """Whether ``path`` is missing, or a directory without a single entry below it."""
        ...


class SourceFetcher(Protocol):
    """Fetches a task's snapshot or git source into a new directory of the worker host."""

    async def __call__(
        self,
        env: Mapping[str, str],
        directory: str,
        output: OutputSink,
        *,
        endpoint: str,
        headers: Mapping[str, str],
    ) -> bool:
        """Fetch into ``directory``; False without a source, ``CloneError`` on failure."""
        ...


# A new private directory of the host for one task (by id), removed when the block ends.
TaskWorkspace = Callable[[str], AbstractAsyncContextManager[str]]

# Removes the task containers of dead workers (their pid fails the check); returns their ids.
LeftoverRemover = Callable[[Callable[[int], bool]], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class WorkerTools:
    """The host tools of the task use cases, built by the worker's composition root."""

    blobs: Callable[[str], BlobTransport]  # a transport for the controller at this endpoint
    archives: CacheArchives
    workspace: TaskWorkspace
    fetch_source: SourceFetcher
    # Warns, once per process, that this many secrets are too short to be masked.
    warn_unmaskable: Callable[[int], None]
