"""``LocalWorkspace``: the ``ProjectWorkspace`` port over this module's git functions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from adapters.workspace.files import project_files
from adapters.workspace.git import find_repository
from adapters.workspace.snapshot import write_snapshot
from adapters.workspace.source import local_source
from domain.source import BuildSource


class LocalWorkspace:
    """The user's project on this machine, read with the real ``git``."""

    def repository_of(self, directory: str) -> str | None:
        """The top level of the git work tree holding ``directory`` (None: not in one)."""
        top = find_repository(Path(directory))
        return None if top is None else str(top)

    def source_of(
        self, project: str, *, remote: str | None, changed_since: str | None
    ) -> BuildSource:
        """The git source of the checkout holding ``project`` (see ``local_source``)."""
        return local_source(Path(project), remote=remote, changed_since=changed_since)

    def files_of(self, project: str) -> Sequence[str]:
        """The project's files git would commit now (relative POSIX paths)."""
        return project_files(Path(project))

    def write_snapshot(self, project: str, files: Sequence[str], out: BinaryIO) -> str:
        """Write ``files`` of ``project`` to ``out`` as a ``.tar.gz``; return its SHA-256."""
        return write_snapshot(Path(project), files, out)
