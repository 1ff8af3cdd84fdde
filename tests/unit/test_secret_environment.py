"""Decrypting a task's environment for its worker: plain values, what to mask, what to refuse."""

from __future__ import annotations

import pytest

from adapters.secrets import SecretCipher
from adapters.secrets.cipher import new_key
from domain.cirrus_config.context import NoSecrets, SecretError
from domain.secret_sealing import has_secret, reveal_secrets

CIPHER = SecretCipher(new_key())


class EmptyValues:
    """A reader whose every secret is the empty string (which nothing can encrypt today)."""

    def decrypt(self, value: str, repository: str) -> str:
        """Return ``""``."""
        return ""


def test_an_environment_without_secrets_is_returned_as_it_is_with_nothing_to_mask() -> None:
    revealed = reveal_secrets({"A": "1", "B": "ENCRYPTED text"}, NoSecrets(), "acme/app")

    assert revealed.environment == {"A": "1", "B": "ENCRYPTED text"}
    assert revealed.secrets_to_mask == ()


def test_encrypted_values_are_decrypted_in_place_and_listed_once_to_mask() -> None:
    token = CIPHER.encrypt("t0ken", "acme/app")
    environment = {
        "TOKEN": token,
        "AGAIN": CIPHER.encrypt("t0ken"),
        "PLAIN": "visible",
        "PASSWORD": CIPHER.encrypt("pa ss"),
    }

    revealed = reveal_secrets(environment, CIPHER, "acme/app")

    assert revealed.environment == {
        "TOKEN": "t0ken",
        "AGAIN": "t0ken",
        "PLAIN": "visible",
        "PASSWORD": "pa ss",
    }
    assert revealed.secrets_to_mask == ("t0ken", "pa ss")


def test_a_secret_inside_a_longer_value_is_decrypted_there() -> None:
    header = f"Authorization: Bearer {CIPHER.encrypt('abc')} and {CIPHER.encrypt('def')}!"

    revealed = reveal_secrets({"HEADER": header}, CIPHER, "")

    assert revealed.environment == {"HEADER": "Authorization: Bearer abc and def!"}
    assert revealed.secrets_to_mask == ("abc", "def")


def test_a_value_that_cannot_be_decrypted_is_refused_naming_its_variable() -> None:
    environment = {"OK": CIPHER.encrypt("fine"), "DEPLOY_KEY": CIPHER.encrypt("k", "acme/other")}

    with pytest.raises(SecretError, match=r"^environment variable DEPLOY_KEY: .*another repo"):
        reveal_secrets(environment, CIPHER, "acme/app")


def test_a_cirrus_ci_value_is_refused_and_never_passed_on() -> None:
    environment = {"GCPJSON": "ENCRYPTED[0543d694d609dc873cabc00eca59269497918419]"}

    with pytest.raises(SecretError, match=r"^environment variable GCPJSON: .*not encrypted by"):
        reveal_secrets(environment, CIPHER, "acme/app")


def test_an_empty_secret_is_decrypted_but_not_masked() -> None:
    revealed = reveal_secrets({"EMPTY": "ENCRYPTED[v1:x]"}, EmptyValues(), "")

    assert revealed.environment == {"EMPTY": ""}
    assert revealed.secrets_to_mask == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ENCRYPTED[abc]", True),
        ("x ENCRYPTED[!abc!] y", True),
        ("ENCRYPTED[]", True),
        ("ENCRYPTED", False),
        ("ENCRYPTED[with space]", False),
        ("$ENCRYPTED", False),
    ],
)
def test_what_counts_as_an_encrypted_text(value: str, expected: bool) -> None:
    assert has_secret(value) is expected
