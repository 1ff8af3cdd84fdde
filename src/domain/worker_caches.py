"""The worker's cache decisions, as the Cirrus agent made them: key, folders, upload or skip.

Key: ``fingerprint_key`` as it is; else ``<cache name>-<sha256 hex>`` of the fingerprint
scripts' output, or of ``CIRRUS_TASK_NAME`` followed by ``CI_NODE_INDEX`` when there are none.
Folders: one folder is its own base (the archive holds its contents); several must all lie
in the working directory, which is then the base. Upload: skipped after a hit unless
``reupload_on_changes``, for empty folders, and when the content digest did not change since
the restore.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from domain.protocol import CacheInstruction


def cache_key(
    name: str,
    instruction: CacheInstruction,
    env: Mapping[str, str],
    fingerprint_output: bytes | None = None,
) -> str:
    """The key of cache ``name``: see the module's docstring."""
    if instruction.fingerprint_key:
        return instruction.fingerprint_key
    digest = hashlib.sha256()
    if instruction.fingerprint_scripts:
        digest.update(fingerprint_output or b"")
    else:
        digest.update(env.get("CIRRUS_TASK_NAME", "").encode())
        digest.update(env.get("CI_NODE_INDEX", "").encode())
    return f"{name}-{digest.hexdigest()}"


def instruction_folders(instruction: CacheInstruction) -> tuple[str, ...]:
    """The instruction's folders (``folder`` and ``folders``), blanks dropped, in order."""
    folders = [instruction.folder, *instruction.folders]
    return tuple(dict.fromkeys(f.strip() for f in folders if f.strip()))


@dataclass(frozen=True, slots=True)
class CacheLayout:
    """Where a cache's archive is rooted (``base``) and what it holds (``members``, relative)."""

    base: str
    members: tuple[str, ...]


class CacheFolderError(ValueError):
    """The folders cannot be cached together (the agent's message)."""


def cache_layout(folders: tuple[str, ...], working_dir: str) -> CacheLayout:
    """The layout of expanded ``folders`` (relative: to ``working_dir``), as the agent chose."""
    absolute = [posixpath.normpath(posixpath.join(working_dir, f)) for f in folders]
    if len(absolute) == 1:
        return CacheLayout(base=absolute[0], members=(".",))
    base = posixpath.normpath(working_dir)
    prefix = base.rstrip("/") + "/"
    members: list[str] = []
    for folder in absolute:
        if not folder.startswith(prefix):
            raise CacheFolderError(
                "When using globs or multiple cache folders, all folders should be relative to "
                f"the current working directory, yet, folder '{folder}' points above the current "
                f"working directory '{prefix}'"
            )
        members.append(folder[len(prefix) :])
    return CacheLayout(base=base, members=tuple(dict.fromkeys(members)))


@dataclass(frozen=True, slots=True)
class RestoredCache:
    """What a cache instruction left for its upload command."""

    name: str
    key: str
    layout: CacheLayout
    hit: bool
    reupload_on_changes: bool
    digest: str | None  # the content after a restore; None after a miss


def upload_skip_reason(cache: RestoredCache, empty: bool, digest: str | None) -> str | None:
    """Why the upload of ``cache`` is skipped (the agent's log line), or ``None`` to upload.

    ``empty``: every folder is missing or empty; ``digest``: the content now (``None`` when not
    computed, which only the first two rules allow).
    """
    if cache.hit and not cache.reupload_on_changes:
        return f"Skipping change detection for {cache.name} cache!"
    if empty:
        shown = ", ".join(
            posixpath.normpath(posixpath.join(cache.layout.base, m)) for m in cache.layout.members
        )
        return f"All cache folders ({shown}) are empty! Skipping uploading ..."
    if cache.digest is not None and digest == cache.digest:
        return f"Cache {cache.name} hasn't changed! Skipping uploading..."
    return None
