"""A SQLite database only its owner can read: directory ``0700``, file ``0600``.

The controller's database holds the hashes of its tokens, the workers' sessions, the tasks'
secrets and logs. Nobody but the controller's user has to read it, whatever the umask.
SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode, so they follow.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("cirrus.controller")

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def prepare_private_database(path: Path) -> None:
    """Create the directory (``0700``) and the empty file (``0600``) of a new database.

    An existing directory is left as it is (it may be shared, such as ``/tmp``). An existing
    database readable by others is restricted to its owner, with a warning. Raises ``OSError``.
    """
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    try:
        # O_EXCL: of two controllers creating one database, one creates; the other opens it.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        _restrict_existing(path)


def _restrict_existing(path: Path) -> None:
    for suffix in _COMPANIONS:
        file = path.with_name(path.name + suffix)
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077 and file.is_file() and file.stat().st_uid == os.getuid():
            os.chmod(file, mode & 0o700)
            log.warning(
                "%s was readable by other users (mode %04o); it is now %04o",
                file,
                mode,
                mode & 0o700,
            )
