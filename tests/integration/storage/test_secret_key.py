"""The secret key in the controller's database, on every store backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.secrets import SECRET_KEY_SETTING, load_secret_cipher
from adapters.storage.sqlite_store import SqliteStore
from domain.cirrus_config.context import SecretError
from domain.store import ControllerStore, StoreError
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration


async def test_the_first_start_makes_a_key_that_later_starts_use(
    backend: StoreBackend, clock: FakeClock, store: ControllerStore
) -> None:
    assert await store.get_setting(SECRET_KEY_SETTING) is None
    first = await load_secret_cipher(store)
    encrypted = first.encrypt("kept across restarts", "acme/app")
    stored = await store.get_setting(SECRET_KEY_SETTING)

    reopened = await backend.open(clock)
    try:
        again = await load_secret_cipher(reopened)
        assert await reopened.get_setting(SECRET_KEY_SETTING) == stored
    finally:
        await reopened.aclose()

    assert stored is not None
    assert len(stored) == 43  # 32 bytes of base64url, no padding
    assert again.fingerprint == first.fingerprint
    assert again.decrypt(encrypted, "acme/app") == "kept across restarts"


async def test_controllers_starting_at_once_on_a_fresh_database_agree_on_one_key(
    backend: StoreBackend, clock: FakeClock, store: ControllerStore
) -> None:
    others = [await backend.open(clock) for _ in range(3)]
    try:
        ciphers = await asyncio.gather(*(load_secret_cipher(s) for s in [store, *others]))
    finally:
        for other in others:
            await other.aclose()

    assert len({cipher.fingerprint for cipher in ciphers}) == 1
    assert ciphers[3].decrypt(ciphers[0].encrypt("shared"), "") == "shared"


async def test_another_database_has_another_key_and_refuses_its_values(
    store: ControllerStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other_store = await SqliteStore.open(
        tmp_path_factory.mktemp("other") / "controller.db", FakeClock()
    )
    try:
        other = await load_secret_cipher(other_store)
    finally:
        await other_store.aclose()
    ours = await load_secret_cipher(store)

    with pytest.raises(SecretError, match="another controller"):
        ours.decrypt(other.encrypt("theirs"), "")


async def test_an_unusable_stored_key_is_a_store_error_naming_the_setting(
    store: ControllerStore,
) -> None:
    await store.set_setting(SECRET_KEY_SETTING, "c2hvcnQ")  # base64url of "short"

    with pytest.raises(StoreError, match=f"{SECRET_KEY_SETTING} is unusable: .*32 bytes"):
        await load_secret_cipher(store)
