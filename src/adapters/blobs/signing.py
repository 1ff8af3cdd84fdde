"""Signed, expiring, single-purpose URLs of the controller's own ``/blobs/...`` endpoints.

A URL is ``/blobs/<key>?expires=<unix seconds>&sig=<hex>``, where ``sig`` is the HMAC-SHA256,
under a per-controller key, of the method, the key and the expiry. The signature is the only
credential of the endpoints: a GET signature does not allow a PUT, an expired one allows
nothing. The key lives in the store's settings (``BLOB_SIGNING_KEY_SETTING``), created with
``put_setting_if_absent`` so that controllers sharing a database agree on one key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Literal, Protocol
from urllib.parse import quote

from domain.blob_signing import SignatureError
from domain.blobs import BlobUrl, validate_key
from domain.store import StoreError

log = logging.getLogger("cirrus.controller")

BLOB_SIGNING_KEY_SETTING = "blob-signing-key-v1"
"""Setting holding the HMAC key of ``/blobs`` URLs (base64url)."""
BLOBS_PATH = "/blobs/"
KEY_BYTES = 32
DEFAULT_EXPIRES_IN = 3600.0
"""How long a URL is valid unless the caller says otherwise: one hour."""

Method = Literal["GET", "PUT"]


class SettingsStore(Protocol):
    """The part of ``ControllerStore`` the signing key needs."""

    async def get_setting(self, key: str) -> str | None:
        """Return a stored setting."""
        ...

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        """Store a setting unless one exists; return whether this call stored it."""
        ...


class BlobSigner:
    """Makes and checks the signatures of ``/blobs`` URLs."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 16:
            raise ValueError("a blob signing key must be at least 16 bytes")
        self._key = key
        self._clock = clock

    @classmethod
    def generate(cls, clock: Callable[[], float] = time.time) -> BlobSigner:
        """A signer with a fresh random key (for one process's life, e.g. tests)."""
        return cls(secrets.token_bytes(KEY_BYTES), clock)

    def signature(self, method: str, key: str, expires: int) -> str:
        """The hex HMAC-SHA256 of one method, key and expiry."""
        message = f"{method}\n{key}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, method: Method, key: str, expires_in: float = DEFAULT_EXPIRES_IN) -> BlobUrl:
        """A relative URL allowing ``method`` on ``key`` for ``expires_in`` seconds."""
        validate_key(key)
        if expires_in <= 0:
            raise ValueError(f"expires_in must be positive, got {expires_in}")
        expires = math.ceil(self._clock() + expires_in)
        sig = self.signature(method, key, expires)
        return BlobUrl(f"{BLOBS_PATH}{quote(key, safe='/')}?expires={expires}&sig={sig}")

    def verify(self, method: str, key: str, expires: str | None, sig: str | None) -> None:
        """Raise ``SignatureError`` unless ``sig`` allows ``method`` on ``key`` now."""
        if not expires or not sig:
            raise SignatureError("the URL has no signature (expires and sig are required)")
        if not expires.isdigit() or len(expires) > 12:
            raise SignatureError("the URL's expiry is not a time")
        expected = self.signature(method, key, int(expires))
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            # Says no more: a signature for another method or key looks like a forged one.
            raise SignatureError(f"the signature does not allow {method} of this blob")
        if int(expires) < self._clock():
            raise SignatureError("the URL has expired")


def encode_signing_key(key: bytes) -> str:
    """The text form of a signing key in the settings."""
    return base64.urlsafe_b64encode(key).decode("ascii")


async def load_blob_signer(
    store: SettingsStore, clock: Callable[[], float] = time.time
) -> BlobSigner:
    """The signer of the database's key, creating the key on the first start."""
    fresh = encode_signing_key(secrets.token_bytes(KEY_BYTES))
    if await store.put_setting_if_absent(BLOB_SIGNING_KEY_SETTING, fresh):
        log.info("generated the blob URL signing key (kept in the database)")
    stored = await store.get_setting(BLOB_SIGNING_KEY_SETTING)
    if stored is None:
        raise StoreError(f"the setting {BLOB_SIGNING_KEY_SETTING} vanished right after it was set")
    try:
        return BlobSigner(base64.urlsafe_b64decode(stored.encode("ascii")), clock)
    except ValueError as error:
        raise StoreError(f"the setting {BLOB_SIGNING_KEY_SETTING} is unusable: {error}") from None
