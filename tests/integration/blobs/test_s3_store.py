"""The S3 blob store against a real S3-API server process (moto's server mode on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # moto brings boto3 without type stubs
import httpx
import pytest

from adapters.blobs.s3 import S3BlobStore, S3Settings, open_s3_store
from domain.blobs import BlobIntegrityError, BlobNotFound
from tests.integration.child_environment import child_environment

MOTO = Path(sys.executable).parent / "moto_server"
START_DEADLINE = 30.0
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server of its own on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_environment(),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"moto did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def blobs(endpoint: str) -> S3BlobStore:
    bucket = "cirrus-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS).create_bucket(
        Bucket=bucket
    )
    settings = S3Settings(bucket, endpoint, "us-east-1", "testing", "testing", prefix="ci/")
    return S3BlobStore(open_s3_store(settings))


def blobs_bucket(blobs: S3BlobStore) -> str:
    bucket: str = blobs._store.config["bucket"]  # the bucket the fixture made
    return bucket


def raw_client(endpoint: str) -> object:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)


async def chunks(body: bytes, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def read(blobs: S3BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.get(key)])


def test_put_get_stat_list_and_delete_round_trip(blobs: S3BlobStore) -> None:
    body = os.urandom(6 * 1024 * 1024 + 3)  # more than one multipart part

    async def scenario() -> None:
        info = await blobs.put("caches/o/r/pip-1", chunks(body))
        assert (info.size, info.sha256) == (len(body), hashlib.sha256(body).hexdigest())
        await blobs.put("caches/o/r/pip-2", chunks(b"two"))
        await blobs.put("caches/o/r/npm", chunks(b"npm"))
        assert await read(blobs, "caches/o/r/pip-1") == body
        stat = await blobs.stat("caches/o/r/pip-1")
        assert stat == info
        listed = sorted([i.key async for i in blobs.list("caches/o/r/pip-")])
        assert listed == ["caches/o/r/pip-1", "caches/o/r/pip-2"]
        assert await blobs.delete("caches/o/r/pip-1") is True
        assert await blobs.delete("caches/o/r/pip-1") is False
        assert await blobs.stat("caches/o/r/pip-1") is None
        with pytest.raises(BlobNotFound):
            await read(blobs, "caches/o/r/pip-1")

    asyncio.run(scenario())


def test_a_presigned_put_then_a_presigned_get_round_trip_over_http(blobs: S3BlobStore) -> None:
    body = os.urandom(200_000)

    async def scenario() -> None:
        put = await blobs.upload_url("artifacts/1/a/file", 60)
        assert put.url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as http:
            response = await http.put(put.url, content=body, headers=dict(put.headers))
            assert response.status_code == 200
            info = await blobs.stat("artifacts/1/a/file")
            assert info is not None
            assert info.sha256 == hashlib.sha256(body).hexdigest()
            get = await blobs.download_url("artifacts/1/a/file", 60)
            assert (await http.get(get.url)).content == body

    asyncio.run(scenario())


def test_a_wrong_expected_sha256_keeps_nothing_and_the_older_blob_stays(
    blobs: S3BlobStore,
) -> None:
    async def scenario() -> None:
        await blobs.put("caches/o/r/k", chunks(b"old"))
        with pytest.raises(BlobIntegrityError):
            await blobs.put("caches/o/r/k", chunks(b"new" * 1000), sha256="0" * 64)
        assert await read(blobs, "caches/o/r/k") == b"old"
        with pytest.raises(BlobIntegrityError):
            await blobs.put("caches/o/r/fresh", chunks(b"new"), sha256="0" * 64)
        assert await blobs.stat("caches/o/r/fresh") is None

    asyncio.run(scenario())


def test_a_get_of_an_object_corrupted_behind_the_stores_back_fails(
    blobs: S3BlobStore, endpoint: str
) -> None:
    bucket = blobs_bucket(blobs)
    asyncio.run(blobs.put("caches/o/r/k", chunks(b"a" * 10_000)))
    client: Any = raw_client(endpoint)
    client.put_object(Bucket=bucket, Key="ci/data/caches/o/r/k", Body=b"b" * 10_000)
    # The sidecar is made to describe the new object: only the content check can catch it.
    sidecar = json.loads(
        client.get_object(Bucket=bucket, Key="ci/sha256/caches/o/r/k")["Body"].read()
    )
    sidecar["e_tag"] = client.head_object(Bucket=bucket, Key="ci/data/caches/o/r/k")["ETag"]
    client.put_object(Bucket=bucket, Key="ci/sha256/caches/o/r/k", Body=json.dumps(sidecar))

    async def corrupted() -> None:
        with pytest.raises(BlobIntegrityError, match="corrupted"):
            await read(blobs, "caches/o/r/k")

    asyncio.run(corrupted())
