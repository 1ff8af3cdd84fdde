"""Where the controller's secret key lives: its database (``settings`` table), made on first start.

The key is kept as base64url text under ``SECRET_KEY_SETTING``. It is created with
``put_setting_if_absent``, so that several controller processes opening one fresh database at
once agree on a single key (the loser of the race reads the winner's). The ``settings`` table
exists since schema version 1, so no migration is needed. Whoever can read the database can
decrypt every secret: back it up and protect it as such.
"""

from __future__ import annotations

import logging
from typing import Protocol

from adapters.secrets.cipher import SecretCipher, decode_key, encode_key, new_key
from domain.secret_sealing import SecretValueError
from domain.store import StoreError

log = logging.getLogger("cirrus.controller")

SECRET_KEY_SETTING = "secret-encryption-key-v1"
"""Setting holding the AES-256 key of ``ENCRYPTED[...]`` values (base64url)."""


class SettingsStore(Protocol):
    """The part of ``ControllerStore`` the key needs."""

    async def get_setting(self, key: str) -> str | None:
        """Return a stored setting."""
        ...

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        """Store a setting unless one exists; return whether this call stored it."""
        ...


async def load_secret_cipher(store: SettingsStore) -> SecretCipher:
    """Return the cipher of the database's key, creating the key on the first start."""
    if await store.put_setting_if_absent(SECRET_KEY_SETTING, encode_key(new_key())):
        log.info("generated the secret encryption key (kept in the database)")
    stored = await store.get_setting(SECRET_KEY_SETTING)
    if stored is None:
        raise StoreError(f"the setting {SECRET_KEY_SETTING} vanished right after it was stored")
    try:
        return SecretCipher(decode_key(stored))
    except SecretValueError as error:
        raise StoreError(f"the setting {SECRET_KEY_SETTING} is unusable: {error}") from None
