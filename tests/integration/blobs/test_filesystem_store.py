"""The filesystem blob store on a real directory: streaming, SHA-256 both ways, atomic publish."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.blobs.filesystem import FilesystemBlobStore
from adapters.blobs.signing import BlobSigner
from domain.blobs import BlobIntegrityError, BlobNotFound, InvalidBlobKey


def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs", BlobSigner.generate())


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(blobs: FilesystemBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.get(key)])


def test_a_blob_put_in_pieces_reads_back_whole_with_its_size_and_sha256(tmp_path: Path) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)

    async def scenario() -> None:
        blobs = store(tmp_path)
        pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        info = await blobs.put("artifacts/1/bin/app", chunks(*pieces))
        assert (info.size, info.sha256) == (len(body), hashlib.sha256(body).hexdigest())
        assert await blobs.stat("artifacts/1/bin/app") == info
        assert await read(blobs, "artifacts/1/bin/app") == body

    asyncio.run(scenario())


def test_a_wrong_expected_sha256_keeps_nothing_and_the_older_blob_stays(tmp_path: Path) -> None:
    async def scenario() -> None:
        blobs = store(tmp_path)
        await blobs.put("caches/o/r/pip", chunks(b"old"))
        with pytest.raises(BlobIntegrityError):
            await blobs.put("caches/o/r/pip", chunks(b"new"), sha256="0" * 64)
        assert await read(blobs, "caches/o/r/pip") == b"old"
        assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
        assert sum(1 for p in (tmp_path / "blobs" / "data").rglob("*") if p.is_file()) == 1

    asyncio.run(scenario())


def test_an_upload_that_fails_midway_publishes_nothing(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ConnectionResetError("the client went away")

    async def scenario() -> None:
        blobs = store(tmp_path)
        with pytest.raises(ConnectionResetError):
            await blobs.put("artifacts/1/a/x", broken())
        assert await blobs.stat("artifacts/1/a/x") is None
        assert list((tmp_path / "blobs" / "tmp").iterdir()) == []

    asyncio.run(scenario())


def test_a_corrupted_blob_fails_at_the_end_of_its_read(tmp_path: Path) -> None:
    async def scenario() -> None:
        blobs = store(tmp_path)
        await blobs.put("caches/o/r/k", chunks(b"a" * 5000))
        index = tmp_path / "blobs" / "index" / "caches/o/r/k.json"
        data_id = json.loads(index.read_text())["data"]
        (tmp_path / "blobs" / "data" / data_id[:2] / data_id).write_bytes(b"b" * 5000)
        with pytest.raises(BlobIntegrityError, match="corrupted"):
            await read(blobs, "caches/o/r/k")

    asyncio.run(scenario())


def test_a_replaced_blob_reads_the_new_content_and_its_old_content_is_gone(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        blobs = store(tmp_path)
        await blobs.put("caches/o/r/k", chunks(b"one"))
        await blobs.put("caches/o/r/k", chunks(b"two"))
        assert await read(blobs, "caches/o/r/k") == b"two"
        files = [p for p in (tmp_path / "blobs" / "data").rglob("*") if p.is_file()]
        assert len(files) == 1

    asyncio.run(scenario())


def test_list_finds_keys_by_string_prefix_and_delete_removes_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        blobs = store(tmp_path)
        for key in ("caches/o/r/pip-1", "caches/o/r/pip-2", "caches/o/r/npm", "caches/o/rx/pip"):
            await blobs.put(key, chunks(key.encode()))
        await blobs.put("artifacts/1/a/.coverage", chunks(b"c"))
        listed = [info.key async for info in blobs.list("caches/o/r/pip-")]
        assert sorted(listed) == ["caches/o/r/pip-1", "caches/o/r/pip-2"]
        assert [info.key async for info in blobs.list("artifacts/")] == ["artifacts/1/a/.coverage"]
        assert len([info async for info in blobs.list("")]) == 5
        assert await blobs.delete("caches/o/r/pip-1") is True
        assert await blobs.delete("caches/o/r/pip-1") is False
        assert await blobs.stat("caches/o/r/pip-1") is None
        with pytest.raises(BlobNotFound):
            await read(blobs, "caches/o/r/pip-1")

    asyncio.run(scenario())


def test_a_key_that_is_not_a_clean_path_is_refused_before_any_file_is_touched(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        blobs = store(tmp_path)
        with pytest.raises(InvalidBlobKey):
            await blobs.put("../escape", chunks(b"x"))
        with pytest.raises(InvalidBlobKey):
            blobs.get("/etc/passwd")
        assert not (tmp_path / "escape.json").exists()

    asyncio.run(scenario())


def test_abandoned_partial_uploads_are_collected_after_the_grace_period(tmp_path: Path) -> None:
    async def scenario() -> None:
        blobs = store(tmp_path)
        partial = tmp_path / "blobs" / "tmp" / "abandoned"
        partial.parent.mkdir(parents=True)
        partial.write_bytes(b"half")
        assert await blobs.collect_partial_uploads(3600) == 0
        old = os.stat(partial).st_mtime - 7200
        os.utime(partial, (old, old))
        assert await blobs.collect_partial_uploads(3600) == 1
        assert not partial.exists()

    asyncio.run(scenario())
