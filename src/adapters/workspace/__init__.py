"""The user's project on this machine: its git repository, its files, a snapshot archive of them
and the build source git says it is (``cirrus build submit``, ``cirrus run``).

Everything here runs the real ``git`` (argv lists, no shell); outside a git work tree the
``.gitignore`` files of the directory are applied with ``pathspec``.
"""

from adapters.workspace.errors import WorkspaceError
from adapters.workspace.files import project_files
from adapters.workspace.git import find_repository
from adapters.workspace.local import LocalWorkspace
from adapters.workspace.snapshot import write_snapshot
from adapters.workspace.source import local_source, repository_name

__all__ = [
    "LocalWorkspace",
    "WorkspaceError",
    "find_repository",
    "local_source",
    "project_files",
    "repository_name",
    "write_snapshot",
]
