"""Signed ``/blobs`` URLs: single-purpose, expiring, tamper-evident, and one key per database."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.blobs.signing import (
    BLOB_SIGNING_KEY_SETTING,
    BlobSigner,
    load_blob_signer,
)
from domain.blob_signing import SignatureError


class Clock:
    """A settable wall clock."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Settings:
    """An in-memory settings table."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_setting(self, key: str) -> str | None:
        return self.values.get(key)

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        if key in self.values:
            return False
        self.values[key] = value
        return True


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.removeprefix("/blobs/"), query["expires"][0], query["sig"][0]


def test_a_url_allows_its_method_on_its_key_until_it_expires() -> None:
    clock = Clock()
    signer = BlobSigner(b"k" * 32, clock)
    url = signer.url("PUT", "artifacts/1/a/b c.txt", 60).url
    assert url.startswith("/blobs/artifacts/1/a/b%20c.txt?expires=")
    _, expires, sig = parts(url)
    signer.verify("PUT", "artifacts/1/a/b c.txt", expires, sig)
    clock.now += 61
    with pytest.raises(SignatureError, match="expired"):
        signer.verify("PUT", "artifacts/1/a/b c.txt", expires, sig)


def test_a_get_signature_does_not_allow_a_put() -> None:
    signer = BlobSigner(b"k" * 32, Clock())
    key, expires, sig = parts(signer.url("GET", "caches/a", 60).url)
    with pytest.raises(SignatureError, match="does not allow PUT"):
        signer.verify("PUT", key, expires, sig)


def test_a_changed_key_expiry_or_signature_is_refused() -> None:
    signer = BlobSigner(b"k" * 32, Clock())
    key, expires, sig = parts(signer.url("GET", "caches/a", 60).url)
    for args in (
        ("caches/b", expires, sig),
        (key, str(int(expires) + 3600), sig),
        (key, expires, sig[:-1] + ("0" if sig[-1] != "0" else "1")),
        (key, expires, None),
        (key, "soon", sig),
    ):
        with pytest.raises(SignatureError):
            signer.verify("GET", *args)


def test_another_key_signs_differently() -> None:
    clock = Clock()
    url = BlobSigner(b"k" * 32, clock).url("GET", "caches/a", 60).url
    key, expires, sig = parts(url)
    with pytest.raises(SignatureError):
        BlobSigner(b"j" * 32, clock).verify("GET", key, expires, sig)


def test_two_controllers_of_one_database_share_the_signing_key() -> None:
    settings = Settings()

    async def both() -> tuple[BlobSigner, BlobSigner]:
        return await load_blob_signer(settings, Clock()), await load_blob_signer(settings, Clock())

    first, second = asyncio.run(both())
    assert BLOB_SIGNING_KEY_SETTING in settings.values
    key, expires, sig = parts(first.url("GET", "caches/a", 60).url)
    second.verify("GET", key, expires, sig)
