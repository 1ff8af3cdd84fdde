"""``/blobs/{key}`` of a real ``cirrus controller run`` on the filesystem store."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.blobs.signing import BLOB_SIGNING_KEY_SETTING, BlobSigner
from tests.integration.test_controller_cli import Process, cli, start_controller

MAX_BYTES = 4 * 1024 * 1024


@dataclass
class BlobController:
    url: str
    signer: BlobSigner
    key: bytes
    blobs_dir: Path


def signing_key_of(database: Path) -> bytes:
    """The controller's signing key, from its database's settings."""
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT value FROM settings WHERE key = ?", (BLOB_SIGNING_KEY_SETTING,))
        (value,) = row.fetchone()
    return base64.urlsafe_b64decode(value)


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlobController]:
    tmp_path = tmp_path_factory.mktemp("blobs")
    config = tmp_path / "controller.yaml"
    config.write_text(f"blobs:\n  path: {tmp_path / 'store'}\n  max-bytes: {MAX_BYTES}\n")
    database = tmp_path / "controller.db"
    process: Process
    process, url = start_controller(tmp_path, database, "-f", str(config))
    try:
        key = signing_key_of(database)
        yield BlobController(url, BlobSigner(key), key, tmp_path / "store")
    finally:
        process.terminate()


def body_chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 100_000):
        yield body[start : start + 100_000]


def test_a_signed_put_then_a_signed_get_round_trips_a_blob(controller: BlobController) -> None:
    body = os.urandom(3 * 1024 * 1024 + 5)
    key = "artifacts/7/binaries/out/app bin"
    put = controller.signer.url("PUT", key, 60).url
    response = httpx.put(controller.url + put, content=body_chunks(body))
    assert response.status_code == 201, response.text
    sha = hashlib.sha256(body).hexdigest()
    assert response.json() == {"key": key, "size": len(body), "sha256": sha}
    got = httpx.get(controller.url + controller.signer.url("GET", key, 60).url)
    assert got.status_code == 200
    assert got.headers["content-length"] == str(len(body))
    assert got.content == body
    assert (controller.blobs_dir / "index" / (key + ".json")).is_file()


def test_expired_wrong_method_tampered_or_missing_signatures_are_refused(
    controller: BlobController,
) -> None:
    key = "caches/o/r/refused"
    get_url = controller.signer.url("GET", key, 60).url
    expired = BlobSigner(controller.key, lambda: 0.0)
    cases = {
        "the signature does not allow PUT": ("PUT", get_url),
        "expired": ("PUT", expired.url("PUT", key, 60).url),
        "does not allow GET": ("GET", get_url.replace("refused", "other")),
        "no signature": ("GET", f"/blobs/{key}"),
    }
    for reason, (method, url) in cases.items():
        response = httpx.request(
            method, controller.url + url, content=b"x" if method == "PUT" else None
        )
        assert response.status_code == 403, (reason, response.text)
        assert reason in response.json()["error"]
        assert "\n" not in response.json()["error"]


def test_a_body_over_the_limit_is_refused_and_nothing_is_kept(controller: BlobController) -> None:
    key = "artifacts/7/big/file"
    too_big = b"z" * (MAX_BYTES + 1)
    response = httpx.put(
        controller.url + controller.signer.url("PUT", key, 60).url, content=body_chunks(too_big)
    )
    assert response.status_code == 413
    got = httpx.get(controller.url + controller.signer.url("GET", key, 60).url)
    assert got.status_code == 404


def test_a_body_of_another_sha256_than_announced_is_refused(controller: BlobController) -> None:
    key = "artifacts/7/sum/file"
    response = httpx.put(
        controller.url + controller.signer.url("PUT", key, 60).url,
        content=b"hello",
        headers={"X-Cirrus-Sha256": hashlib.sha256(b"other").hexdigest()},
    )
    assert response.status_code == 422
    assert httpx.get(controller.url + controller.signer.url("GET", key, 60).url).status_code == 404


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("blobs:\n  kind: nfs\n", "blobs.kind"),
        ("blobs:\n  kind: s3\n", "blobs.bucket"),
        ("retention:\n  caches-days: -1\n", "retention.caches-days"),
    ],
)
def test_a_bad_blobs_or_retention_value_exits_2_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    config = tmp_path / "controller.yaml"
    config.write_text(text)
    result: subprocess.CompletedProcess[str] = cli(
        tmp_path, "controller", "run", "-f", str(config), "--database", "sqlite:///:memory:"
    )
    assert result.returncode == 2, result.stderr
    assert key in result.stderr
    assert "Traceback" not in result.stderr
