"""The worker log's secret filter: registered values hidden, too-short ones left and warned."""

from __future__ import annotations

import logging

import pytest

from adapters.logging.masking import SecretMaskingFilter, SecretRegistry


def masked(registry: SecretRegistry, message: str, *args: object) -> str:
    """The message of a record after the filter of ``registry`` has seen it."""
    record = logging.LogRecord("cirrus.test", logging.INFO, __file__, 1, message, args, None)
    assert SecretMaskingFilter(registry).filter(record)
    return record.getMessage()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_secret_of_four_characters_or_more_is_hidden_in_message_and_arguments() -> None:
    registry = SecretRegistry()
    registry.add(["s3cr", "token-1234"])
    assert masked(registry, "using %s and s3cr", "token-1234") == "using *** and ***"


def test_secrets_of_one_to_three_characters_do_not_garble_log_lines() -> None:
    registry = SecretRegistry()
    registry.add(["x", "it", "abc"])
    assert masked(registry, "exit: task abc exited") == "exit: task abc exited"
    assert registry.snapshot() == ()


def test_a_too_short_secret_is_warned_about_once_without_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = SecretRegistry()
    with caplog.at_level(logging.WARNING):
        registry.add(["zq", "long-enough"])
        registry.add(["q"])
        registry.warn_unmaskable(2)
    warned = warnings_of(caplog)
    assert len(warned) == 1
    assert "1 secret value(s) shorter than 4 characters cannot be masked" in warned[0]
    assert "zq" not in warned[0]


def test_secrets_long_enough_give_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    registry = SecretRegistry()
    with caplog.at_level(logging.WARNING):
        registry.add(["long-enough", ""])
    assert warnings_of(caplog) == []
