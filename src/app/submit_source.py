"""Where a submitted build's code comes from: the project directory of the submitted file,
archived as a snapshot for the controller, or (``--remote``) the pushed commit for the workers
to clone.

The project directory is the top level of the git work tree that holds the ``.cirrus.yml``. The
snapshot holds what git would commit now: tracked and untracked files that are not ignored, so
uncommitted changes are built too. Outside a git work tree the build has no source: what a
directory holds besides the project (a database, build output, a home directory) is not known,
and archiving it whole could be slow, large or racy; ``cirrus run`` is the way to run a
directory that is not a repository.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from domain.controller_calls import (
    ControllerRefused,
    ResourceNotFound,
    SnapshotUploads,
    UnexpectedAnswer,
)
from domain.project_workspace import ProjectWorkspace
from domain.source import BuildSource

SNAPSHOT_FILE_NAME = "snapshot.tar.gz"


@dataclass(frozen=True, slots=True)
class PreparedSource:
    """The source of a submission before it is sent; ``archive`` is the snapshot to upload
    (None: a git source, nothing to upload)."""

    project: Path
    source: BuildSource
    archive: Path | None = None
    sha256: str = ""
    file_count: int = 0


def project_directory(workspace: ProjectWorkspace, config_file: Path) -> Path:
    """Return the project directory of a ``.cirrus.yml`` path: its repository's top level, or
    its own directory outside git."""
    directory = config_file.absolute().parent
    top = workspace.repository_of(str(directory))
    return Path(top) if top is not None else directory.resolve()


def prepare_source(
    workspace: ProjectWorkspace,
    config_file: Path,
    workdir: Path,
    *,
    remote: str | None,
    changed_since: str | None,
) -> PreparedSource:
    """Read the source from the project of ``config_file``; without ``remote`` also write the
    snapshot archive into ``workdir``. The workspace's error for what the user must fix."""
    project = project_directory(workspace, config_file)
    if remote is None and changed_since is None and workspace.repository_of(str(project)) is None:
        return PreparedSource(project, BuildSource())
    source = workspace.source_of(str(project), remote=remote, changed_since=changed_since)
    if remote is not None:
        return PreparedSource(project, source)
    archive = workdir / SNAPSHOT_FILE_NAME
    # The archive is not part of the project, even when the temporary directory is inside it.
    files = [
        name
        for name in workspace.files_of(str(project))
        if not (project / name).is_relative_to(workdir)
    ]
    with archive.open("wb") as out:
        sha256 = workspace.write_snapshot(str(project), files, out)
    return PreparedSource(project, source, archive, sha256, len(files))


async def send_source(client: SnapshotUploads, prepared: PreparedSource) -> BuildSource:
    """Upload the snapshot (if any) and return the source to submit with the build."""
    if prepared.archive is None:
        return prepared.source
    try:
        stored = await client.upload_snapshot(str(prepared.archive))
    except ResourceNotFound as error:
        # A controller from before snapshots: say what is missing, not just "Not Found".
        raise ResourceNotFound(
            error.status,
            f"the controller {client.base_url} does not accept snapshots "
            f"(POST /api/v1/snapshots: {error.message}); submit with --remote instead",
        ) from None
    except ControllerRefused as error:
        raise ControllerRefused(
            error.status, f"the snapshot of {prepared.project} was refused: {error.message}"
        ) from None
    if stored.sha256.lower() != prepared.sha256:
        raise UnexpectedAnswer(
            f"the controller stored snapshot {stored.id} with SHA-256 {stored.sha256}, "
            f"not {prepared.sha256} as sent"
        )
    return dataclasses.replace(prepared.source, snapshot=stored.id, snapshot_sha256=prepared.sha256)


def snapshot_line(prepared: PreparedSource, source: BuildSource) -> str:
    """The line printed after an upload: what was sent from where."""
    size = prepared.archive.stat().st_size if prepared.archive is not None else 0
    return (
        f"snapshot {source.snapshot}: {prepared.file_count} file(s) of {prepared.project}, "
        f"{size} bytes"
    )
