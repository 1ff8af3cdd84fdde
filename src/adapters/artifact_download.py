"""Copies a task's committed artifacts out of a controller, as ``cirrus run --artifacts-dir`` did.

The layout is the original's: ``DIR/<task name>/<artifact name>/<file path>``; a task or
artifact name that is not a single safe path segment is skipped (the original skipped them
too), and no file may land outside ``DIR``. Files stream from
``GET /api/v1/tasks/{id}/artifacts/{name}/{path}`` (listed by ``GET .../artifacts``) to a
temporary file, renamed into place once complete.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from domain.errors import CirrusError

CHUNK = 1024 * 1024


class ArtifactDownloadError(CirrusError):
    """The artifacts of a task could not be copied out."""


def path_safe(name: str) -> bool:
    """Whether ``name`` is one path segment: not empty, no separator, not ``.`` or ``..``."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` unless ``relative`` leaves ``root`` (absolute, or ``..`` first)."""
    normalised = posixpath.normpath(relative)
    if posixpath.isabs(normalised) or normalised in (".", "..") or normalised.startswith("../"):
        return None
    return root / normalised


async def _listing(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/tasks/{urllib.parse.quote(task_id)}/artifacts")
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise ArtifactDownloadError(
            f"listing the artifacts of task {task_id} failed: HTTP {response.status_code}"
        )
    entries = response.json().get("artifacts") or []
    return [e for e in entries if isinstance(e, dict)]


async def _fetch(client: httpx.AsyncClient, url: str, target: Path) -> None:
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise ArtifactDownloadError(f"downloading {url} failed: HTTP {response.status_code}")
        file = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in response.aiter_bytes(CHUNK):
                await asyncio.to_thread(file.write, chunk)
        finally:
            await asyncio.to_thread(file.close)
    await asyncio.to_thread(os.replace, partial, target)


async def download_task_artifacts(
    base_url: str, admin_token: str, task_id: str, task_name: str, directory: Path
) -> int:
    """Copy task ``task_id``'s artifacts into ``directory/<task name>/``; return the count."""
    if not path_safe(task_name):
        return 0
    root = directory / task_name
    copied = 0
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600.0) as client:
        try:
            for entry in await _listing(client, task_id):
                name, path = str(entry.get("name", "")), str(entry.get("path", ""))
                target = _inside(root / name, path) if path_safe(name) and path else None
                if target is None:
                    continue
                quoted = urllib.parse.quote(f"{name}/{path}")
                url = f"/api/v1/tasks/{urllib.parse.quote(task_id)}/artifacts/{quoted}"
                await _fetch(client, url, target)
                copied += 1
        except (httpx.HTTPError, OSError, ValueError) as error:
            raise ArtifactDownloadError(
                f"copying the artifacts of task {task_name}: {error or type(error).__name__}"
            ) from error
    return copied
