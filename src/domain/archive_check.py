"""The port that checks an uploaded snapshot archive before the controller keeps it.

What makes an archive acceptable (a whole gzip'd tar whose members all stay inside the tree it
unpacks to) is decided by ``adapters.safe_tar.check_snapshot_archive``, which reads it with
``tarfile``; the snapshot endpoint only takes this port and answers 400 with the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO


class ArchiveError(Exception):
    """An uploaded snapshot is not a usable ``.tar.gz``; the message says why."""


ArchiveCheck = Callable[[IO[bytes]], None]
"""Checks a whole uploaded archive (read from its start, left at its start again): returns if
it is acceptable, else raises ``ArchiveError`` saying why."""
