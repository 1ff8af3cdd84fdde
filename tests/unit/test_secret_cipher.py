"""The secret cipher: ``ENCRYPTED[v1:...]`` round trips, and every value it must refuse."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.secrets.cipher import (
    MAX_VALUE_BYTES,
    SecretCipher,
    decode_key,
    encode_key,
    new_key,
)
from domain.cirrus_config.context import ForeignSecretError, SecretError, SecretReader
from domain.secret_sealing import SecretValueError

CIPHER = SecretCipher(bytes(range(32)))
FORMAT = re.compile(r"ENCRYPTED\[v1:[A-Za-z0-9_-]+\]")


def _payload(text: str) -> bytearray:
    body = text[len("ENCRYPTED[v1:") : -1]
    return bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _text(payload: bytes) -> str:
    return "ENCRYPTED[v1:" + base64.urlsafe_b64encode(payload).decode().rstrip("=") + "]"


def test_a_value_without_repository_decrypts_for_any_repository_and_for_none() -> None:
    encrypted = CIPHER.encrypt("hunter2")

    assert FORMAT.fullmatch(encrypted)
    assert CIPHER.decrypt(encrypted, "") == "hunter2"
    assert CIPHER.decrypt(encrypted, "acme/app") == "hunter2"


def test_a_value_bound_to_a_repository_decrypts_for_it_whatever_the_letter_case() -> None:
    encrypted = CIPHER.encrypt("token", "Acme/App")

    assert CIPHER.decrypt(encrypted, "acme/app") == "token"
    assert CIPHER.decrypt(f"  {encrypted}\n", " ACME/APP ") == "token"


def test_a_value_bound_to_a_repository_is_refused_for_another_one() -> None:
    encrypted = CIPHER.encrypt("token", "acme/app")

    with pytest.raises(SecretError, match=r"for repository 'acme/other': .*another repository"):
        CIPHER.decrypt(encrypted, "acme/other")


def test_a_value_bound_to_a_repository_is_refused_to_a_build_without_one() -> None:
    encrypted = CIPHER.encrypt("token", "acme/app")

    with pytest.raises(SecretError, match=r"bound to a repository.*CIRRUS_REPO_FULL_NAME"):
        CIPHER.decrypt(encrypted, "")


def test_another_controllers_value_is_refused_as_such() -> None:
    other = SecretCipher(new_key())

    with pytest.raises(SecretError, match="encrypted by another controller"):
        CIPHER.decrypt(other.encrypt("token"), "")
    assert other.fingerprint != CIPHER.fingerprint


def test_a_value_altered_in_any_byte_is_refused() -> None:
    encrypted = CIPHER.encrypt("a secret worth protecting", "acme/app")
    original = _payload(encrypted)
    for position in range(len(original)):
        altered = bytearray(original)
        altered[position] ^= 0x01
        with pytest.raises(SecretError, match="cannot decrypt"):
            CIPHER.decrypt(_text(bytes(altered)), "acme/app")


def test_turning_a_bound_value_into_an_unbound_one_is_refused() -> None:
    payload = _payload(CIPHER.encrypt("token", "acme/app"))
    payload[4] = 0  # the scope byte: "any repository"

    with pytest.raises(SecretError, match="altered"):
        CIPHER.decrypt(_text(bytes(payload)), "acme/other")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("hunter2", "not an ENCRYPTED"),
        ("ENCRYPTED[v1:abc", "not an ENCRYPTED"),
        ("ENCRYPTED[4a761023e7e06fe2eb350c8b6e8e7ca961af]", "not encrypted by this controller"),
        ("ENCRYPTED[!8ee7eb2504cc84b08d4a7c0dacbe!]", "not encrypted by this controller"),
        ("ENCRYPTED[v1:]", "truncated"),
        ("ENCRYPTED[v1:AAAA]", "truncated"),
        ("ENCRYPTED[v1:not+base64/url=]", "not base64url"),
    ],
)
def test_text_that_is_not_one_of_this_controllers_values_is_refused(
    value: str, reason: str
) -> None:
    with pytest.raises(SecretError, match=reason):
        CIPHER.decrypt(value, "")


@pytest.mark.parametrize(
    "value",
    [
        "ENCRYPTED[4a761023e7e06fe2eb350c8b6e8e7ca961af]",
        "ENCRYPTED[!8ee7eb2504cc84b08d4a7c0dacbe!]",
    ],
)
def test_a_hosted_cirrus_value_is_refused_as_foreign(value: str) -> None:
    with pytest.raises(ForeignSecretError):
        CIPHER.decrypt(value, "octo/cat")


@pytest.mark.parametrize("value", ["ENCRYPTED[v1:AAAA]", "hunter2"])
def test_a_damaged_value_of_ours_is_not_taken_for_a_foreign_one(value: str) -> None:
    with pytest.raises(SecretError) as raised:
        CIPHER.decrypt(value, "octo/cat")
    assert not isinstance(raised.value, ForeignSecretError)


def test_truncating_a_value_is_refused() -> None:
    encrypted = CIPHER.encrypt("token")

    with pytest.raises(SecretError, match="cannot decrypt"):
        CIPHER.decrypt(encrypted[:-3] + "]", "")


def test_encrypting_the_same_value_twice_gives_two_texts() -> None:
    assert CIPHER.encrypt("same") != CIPHER.encrypt("same")


def test_empty_and_oversized_values_and_blank_repository_names_are_refused() -> None:
    with pytest.raises(SecretValueError, match="must not be empty"):
        CIPHER.encrypt("")
    with pytest.raises(SecretValueError, match=f"at most {MAX_VALUE_BYTES}"):
        CIPHER.encrypt("x" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(SecretValueError, match="must not contain blanks"):
        CIPHER.encrypt("token", "acme/my app")
    assert CIPHER.decrypt(CIPHER.encrypt("x" * MAX_VALUE_BYTES), "") == "x" * MAX_VALUE_BYTES


def test_a_key_survives_its_text_form_and_a_bad_text_is_refused() -> None:
    key = new_key()

    assert decode_key(encode_key(key)) == key
    with pytest.raises(SecretValueError, match="32 bytes"):
        decode_key(encode_key(key[:16]))
    with pytest.raises(SecretValueError, match="base64url"):
        decode_key("not a key!")
    with pytest.raises(SecretValueError, match="32 bytes"):
        SecretCipher(b"short")


def test_the_cipher_is_a_secret_reader_of_parsing() -> None:
    reader: SecretReader = CIPHER

    assert reader.decrypt(CIPHER.encrypt("v"), "") == "v"


@settings(max_examples=60)
@given(
    value=st.text(min_size=1, max_size=300),
    repository=st.from_regex(r"[A-Za-z0-9_.-]{1,20}/[A-Za-z0-9_.-]{1,20}", fullmatch=True),
)
def test_any_text_round_trips_for_its_repository(value: str, repository: str) -> None:
    assert CIPHER.decrypt(CIPHER.encrypt(value, repository), repository.upper()) == value
