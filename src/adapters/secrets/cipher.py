"""The controller's secret cipher: ``ENCRYPTED[...]`` values only this controller can decrypt.

AES-256-GCM (``cryptography``), authenticated: a value altered in any byte, encrypted with
another controller's key, or bound to another repository is refused, never decrypted to garbage.

Text format (version 1)::

    ENCRYPTED[v1:<base64url without padding of  key-id(4) | scope(1) | nonce(12) | ciphertext+tag>]

``key-id`` is a fingerprint of the key, so that a value from another controller gets its own
message. ``scope`` is 0 for a value usable by any repository, 1 for a value bound to a
repository. The associated data, which GCM authenticates without storing, is the format
version, key-id and scope, and for a bound value the repository's name: decrypting for another
repository fails the tag check. Repository names compare case-insensitively (forges treat
``Owner/Repo`` and ``owner/repo`` as one repository).

Why unbound values exist: Cirrus CI bound every secret to its repository or organisation, but a
self-hosted controller also runs builds submitted without a repository (``cirrus build submit``
from a working tree, no ``CIRRUS_REPO_FULL_NAME``); a value encrypted without a repository is
meant for those, and for every repository of this controller. Only the admin token can encrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.cirrus_config.context import ForeignSecretError, SecretError
from domain.secret_sealing import SecretValueError

KEY_BYTES = 32
"""AES-256."""

MAX_VALUE_BYTES = 64 * 1024
"""Largest plain value accepted for encryption (UTF-8 bytes)."""

PREFIX = "ENCRYPTED["
VERSION = "v1:"
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_TAG_BYTES = 16
_ANY_REPOSITORY = 0
_BOUND = 1
_ASSOCIATED = b"cirrus-secret:v1\x00"
_HEADER = _KEY_ID_BYTES + 1 + _NONCE_BYTES
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

CANNOT = "this controller cannot decrypt it"


def normalize_repository(repository: str) -> str:
    """Return the form a repository name is bound by (trimmed, case-folded); ``""`` = none."""
    name = repository.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        raise SecretValueError(f"repository {repository!r} must not contain blanks")
    return name.casefold()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    if _BASE64URL.fullmatch(text) is None:
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(key: bytes) -> bytes:
    """Return the 4-byte fingerprint of a key written into every value it encrypts."""
    return hashlib.sha256(b"cirrus-secret-key-id\x00" + key).digest()[:_KEY_ID_BYTES]


def encode_key(key: bytes) -> str:
    """Return a key as the text kept in the database (base64url)."""
    return _b64encode(key)


def decode_key(text: str) -> bytes:
    """Return the key of ``encode_key``'s text; ``SecretValueError`` if it is not one."""
    try:
        key = _b64decode(text.strip())
    except (binascii.Error, ValueError):
        raise SecretValueError("the secret key is not base64url text") from None
    if len(key) != KEY_BYTES:
        raise SecretValueError(f"the secret key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


class SecretCipher:
    """Encrypts values into ``ENCRYPTED[...]`` text and decrypts them (a ``SecretSealer``)."""

    __slots__ = ("_aead", "_key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretValueError(f"the secret key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self._key_id = key_id(key)

    @classmethod
    def generate(cls) -> SecretCipher:
        """Return a cipher with a new random key (kept nowhere: for one process's life)."""
        return cls(new_key())

    @property
    def fingerprint(self) -> str:
        """The key's fingerprint as hex (safe to log: it reveals nothing of the key)."""
        return self._key_id.hex()

    def encrypt(self, value: str, repository: str = "") -> str:
        """Return ``ENCRYPTED[v1:...]`` of ``value``, bound to ``repository`` unless empty."""
        plain = value.encode("utf-8")
        if not plain:
            raise SecretValueError("the value to encrypt must not be empty")
        if len(plain) > MAX_VALUE_BYTES:
            raise SecretValueError(
                f"the value to encrypt is {len(plain)} bytes; at most {MAX_VALUE_BYTES} allowed"
            )
        name = normalize_repository(repository)
        scope = _BOUND if name else _ANY_REPOSITORY
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, self._associated(scope, name))
        payload = self._key_id + bytes([scope]) + nonce + sealed
        return f"{PREFIX}{VERSION}{_b64encode(payload)}]"

    def decrypt(self, value: str, repository: str) -> str:
        """Return the plain text of an ``ENCRYPTED[...]`` value for ``repository``, or raise
        ``SecretError`` saying why this controller cannot decrypt it."""
        text = value.strip()
        if not (text.startswith(PREFIX) and text.endswith("]")):
            raise SecretError("it is not an ENCRYPTED[...] value")
        body = text[len(PREFIX) : -1]
        if not body.startswith(VERSION):
            raise ForeignSecretError(
                f"{CANNOT}: it was not encrypted by this controller "
                "(Cirrus CI's values cannot be decrypted here; use `cirrus secret encrypt`)"
            )
        try:
            payload = _b64decode(body[len(VERSION) :])
        except (binascii.Error, ValueError):
            raise SecretError(f"{CANNOT}: it is damaged (not base64url text)") from None
        if len(payload) < _HEADER + _TAG_BYTES or payload[_KEY_ID_BYTES] not in (0, 1):
            raise SecretError(f"{CANNOT}: it is damaged (truncated or altered)")
        if payload[:_KEY_ID_BYTES] != self._key_id:
            raise SecretError(f"{CANNOT}: it was encrypted by another controller (another key)")
        scope = payload[_KEY_ID_BYTES]
        name = normalize_repository(repository) if scope == _BOUND else ""
        if scope == _BOUND and not name:
            raise SecretError(
                f"{CANNOT}: it is bound to a repository and this build names none "
                "(CIRRUS_REPO_FULL_NAME)"
            )
        nonce = payload[_KEY_ID_BYTES + 1 : _HEADER]
        try:
            plain = self._aead.decrypt(nonce, payload[_HEADER:], self._associated(scope, name))
        except InvalidTag:
            if scope == _BOUND:
                raise SecretError(
                    f"{CANNOT} for repository {repository.strip()!r}: it was encrypted for "
                    "another repository, or altered"
                ) from None
            raise SecretError(f"{CANNOT}: it was altered") from None
        return plain.decode("utf-8")

    def _associated(self, scope: int, repository: str) -> bytes:
        return _ASSOCIATED + self._key_id + bytes([scope]) + repository.encode("utf-8")


def new_key() -> bytes:
    """Return a new random key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)
