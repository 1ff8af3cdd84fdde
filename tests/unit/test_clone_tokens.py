"""``CloneTokens``: a task gets the clone token of its build's registered repository only."""

from __future__ import annotations

import pytest

from adapters.secrets import SecretCipher
from adapters.storage.memory_repositories import MemoryRepositories
from app.controller.clone_tokens import CloneTokens
from domain.cirrus_config.context import SecretError
from domain.repositories import Forge, Repository

TOKEN = "ghp_the-forge-token-of-acme-app"


class FixedClock:
    """A clock that stands still."""

    def now(self) -> float:
        """Seconds since the epoch, always the same."""
        return 1_700_000_000.0

    def monotonic(self) -> float:
        """Always the same."""
        return 0.0


async def registry_with_acme_app(cipher: SecretCipher) -> MemoryRepositories:
    """A registry holding acme/app with ``TOKEN`` encrypted by ``cipher``."""
    repositories = MemoryRepositories(FixedClock())
    await repositories.save_repository(
        Repository(
            name="acme/app",
            forge=Forge.GITEA,
            api_url="https://gitea.example/api/v1",
            clone_url="https://gitea.example/acme/app.git",
            encrypted_token=cipher.encrypt(TOKEN, "acme/app"),
            encrypted_webhook_secret=cipher.encrypt("hook", "acme/app"),
        ),
        replace_webhook_secret=True,
    )
    return repositories


async def test_a_task_of_the_registered_repository_in_any_case_gets_the_token_masked() -> None:
    cipher = SecretCipher.generate()
    tokens = CloneTokens(await registry_with_acme_app(cipher), cipher)
    grant = await tokens.grant("ACME/App", {"CIRRUS_REPO_CLONE_URL": "https://x/acme/app.git"})
    assert grant.environment == {"CIRRUS_REPO_CLONE_TOKEN": TOKEN}
    assert grant.secrets_to_mask == (TOKEN,)


@pytest.mark.parametrize("repository", ["", "acme/other", "other/app"])
async def test_a_task_of_no_or_another_repository_gets_nothing(repository: str) -> None:
    cipher = SecretCipher.generate()
    tokens = CloneTokens(await registry_with_acme_app(cipher), cipher)
    grant = await tokens.grant(repository, {})
    assert (grant.environment, grant.secrets_to_mask) == ({}, ())


async def test_a_controller_without_a_registry_hands_out_nothing() -> None:
    grant = await CloneTokens(None, SecretCipher.generate()).grant("acme/app", {})
    assert grant.environment == {}


async def test_a_token_of_another_key_is_a_secret_error_naming_the_repository_not_the_token() -> (
    None
):
    tokens = CloneTokens(
        await registry_with_acme_app(SecretCipher.generate()), SecretCipher.generate()
    )
    with pytest.raises(SecretError, match="clone token of repository acme/app cannot be used") as e:
        await tokens.grant("acme/app", {})
    assert TOKEN not in str(e.value)
