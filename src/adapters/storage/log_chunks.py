"""What the SQLite and PostgreSQL stores share about command logs, whatever the SQL dialect.

Both keep a log as ``log_chunks`` rows keyed by byte offset: small appends are merged into the
last row until it reaches ``COALESCE_LIMIT``, big ones are split at ``LOG_CHUNK_LIMIT``; and both
refuse a negative range the same way.
"""

from __future__ import annotations

COALESCE_LIMIT = 64 * 1024
"""An append is merged into the last chunk while the merged chunk stays this small."""


def check_log_range(offset: int, limit: int | None) -> None:
    """Raise ``ValueError`` for a negative ``offset`` or ``limit`` of a log read."""
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError(f"a log range needs offset >= 0 and limit >= 0, got {offset}, {limit}")
