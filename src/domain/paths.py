"""Lexical path cleaning of volume sources, as Go's ``filepath.Clean`` on Unix (spec §5.4).

Cleaning never touches the file system: ``..`` is resolved against the text of the path, not
against symbolic links. The policy matches its patterns against the cleaned path so that
``/allowed/../etc`` cannot pass for something under ``/allowed``.
"""

from __future__ import annotations

SEPARATOR = "/"


def clean_path(path: str) -> str:
    """Return the shortest path equivalent to ``path`` by purely lexical processing (Go Clean)."""
    if not path:
        return "."
    rooted = path.startswith(SEPARATOR)
    kept: list[str] = []
    for segment in path.split(SEPARATOR):
        if segment in ("", "."):
            continue
        if segment != "..":
            kept.append(segment)
        elif kept and kept[-1] != "..":
            kept.pop()
        elif not rooted:
            # A relative path cannot climb above its start lexically, so the ``..`` stays.
            kept.append(segment)
        # A rooted ``..`` at the root is the root itself: dropped.
    cleaned = SEPARATOR.join(kept)
    if rooted:
        return SEPARATOR + cleaned
    return cleaned or "."


def clean_volume_source(source: str) -> str:
    """Return ``clean_path(source)``, with the trailing ``/`` of the original source kept."""
    cleaned = clean_path(source)
    # The original keeps a trailing separator so that a pattern such as ``/var/cache/*``
    # matches ``/var/cache/`` but not ``/var/cache``.
    if source.endswith(SEPARATOR) and cleaned != SEPARATOR:
        return cleaned + SEPARATOR
    return cleaned
