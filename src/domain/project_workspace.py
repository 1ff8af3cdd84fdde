"""The user's project on this machine as ``build submit`` reads it: a port.

Paths are this machine's, as text (the domain does no file I/O); ``adapters.workspace``'s
``LocalWorkspace`` answers with the real ``git`` and raises ``WorkspaceError`` for what the
user must fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO, Protocol

from domain.source import BuildSource


class ProjectWorkspace(Protocol):
    """The project's repository, its files, the source git says it is, and its snapshot."""

    def repository_of(self, directory: str) -> str | None:
        """The top level of the git work tree holding ``directory`` (None: not in one)."""
        ...

    def source_of(
        self, project: str, *, remote: str | None, changed_since: str | None
    ) -> BuildSource:
        """The git source of the checkout holding ``project`` (empty outside git); with
        ``remote`` that remote's repository at HEAD, which must be pushed there."""
        ...

    def files_of(self, project: str) -> Sequence[str]:
        """The project's files git would commit now (relative POSIX paths)."""
        ...

    def write_snapshot(self, project: str, files: Sequence[str], out: BinaryIO) -> str:
        """Write ``files`` of ``project`` to ``out`` as a ``.tar.gz``; return its SHA-256."""
        ...
