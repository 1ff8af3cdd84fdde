"""Downloads a build's snapshot from the controller and unpacks it into a workspace directory.

The archive streams to a temporary file (never whole in memory) while its SHA-256 is computed;
a mismatch with the build's recorded hash fails before anything is unpacked. Unpacking uses
``tarfile``'s ``data`` filter: no member may land outside the directory, and links, devices
and special permission bits are refused or stripped. Network trouble and 5xx answers are
retried with backoff; a refusal (4xx) is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from domain.clone import CloneError, SnapshotSource, snapshot_url
from domain.ports import OutputSink

CHUNK = 256 * 1024
Sleep = Callable[[float], Awaitable[None]]


class TransientDownloadError(CloneError):
    """The download failed in a way worth retrying."""


async def _download(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], into: Path
) -> str:
    """Stream ``url`` into ``into``; return the SHA-256 (hex) of what arrived."""
    digest = hashlib.sha256()
    try:
        async with client.stream("GET", url, headers=dict(headers)) as response:
            if response.status_code >= 500:
                raise TransientDownloadError(
                    f"downloading the snapshot failed: HTTP {response.status_code} from {url}"
                )
            if response.status_code != 200:
                raise CloneError(
                    f"the controller refused the snapshot download: HTTP "
                    f"{response.status_code} from {url}"
                )
            with into.open("wb") as file:
                async for chunk in response.aiter_bytes(CHUNK):
                    digest.update(chunk)
                    await asyncio.to_thread(file.write, chunk)
    except httpx.TransportError as exc:
        raise TransientDownloadError(
            f"downloading the snapshot from {url} failed: {exc or type(exc).__name__}"
        ) from exc
    return digest.hexdigest()


def _unpack(archive: Path, directory: Path) -> int:
    """Unpack a ``.tar.gz`` into ``directory`` with the ``data`` filter; return the file count."""
    # Imported here: an idle worker, or one whose tasks have no snapshot source, needs no tar.
    import tarfile

    from adapters.safe_tar import extract_members

    directory.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            extract_members(tar, members, str(directory))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CloneError(f"cannot unpack the snapshot: {exc}") from exc
    return sum(1 for member in members if member.isfile())


async def fetch_snapshot(
    source: SnapshotSource,
    endpoint: str,
    headers: Mapping[str, str],
    directory: Path,
    output: OutputSink,
    *,
    attempts: int = 4,
    initial_wait: float = 1.0,
    sleep: Sleep = asyncio.sleep,
    read_timeout: float = 300.0,
) -> int:
    """Download, check and unpack the snapshot into ``directory``; return its file count."""
    url = snapshot_url(endpoint, source)
    await output.write(f"Downloading snapshot {source.snapshot_id}...\n".encode())
    with tempfile.TemporaryDirectory(prefix="cirrus-snapshot-") as scratch:
        archive = Path(scratch, "snapshot.tar.gz")
        async with httpx.AsyncClient(timeout=read_timeout) as client:
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(TransientDownloadError),
                stop=stop_after_attempt(attempts),
                wait=wait_exponential(multiplier=initial_wait, max=15.0),
                sleep=sleep,
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        await output.write(b"Retrying the download...\n")
                    digest = await _download(client, url, headers, archive)
        if digest != source.sha256:
            raise CloneError(
                f"the snapshot {source.snapshot_id} is corrupt: its SHA-256 is {digest}, "
                f"expected {source.sha256}"
            )
        count = await asyncio.to_thread(_unpack, archive, directory)
    await output.write(f"Unpacked {count} files of snapshot {source.snapshot_id}.\n".encode())
    return count
