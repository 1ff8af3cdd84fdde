"""The port of the controller's secret cipher: sealing plain values into ``ENCRYPTED[...]``
texts and opening them again, and what a task's environment looks like once opened.

The cipher itself (AES-GCM, the key) is ``adapters.secrets``; the HTTP API and the Twirp
services take this port, so that they never see the key or the library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from domain.cirrus_config.context import SecretError, SecretReader

ENCRYPTED_VALUE = re.compile(r"ENCRYPTED\[[^\[\]\s]*\]")
"""An ``ENCRYPTED[...]`` text of any origin (ours, or Cirrus CI's hex forms)."""


class SecretValueError(ValueError):
    """A value or repository name cannot be encrypted; ``str()`` says why."""


class SecretSealer(SecretReader, Protocol):
    """Encrypts values into ``ENCRYPTED[...]`` texts and decrypts them (a ``SecretReader``)."""

    def encrypt(self, value: str, repository: str = "") -> str:
        """Return ``ENCRYPTED[...]`` of ``value``, bound to ``repository`` unless empty;
        ``SecretValueError`` if the value or the repository name cannot be encrypted."""
        ...


@dataclass(frozen=True, slots=True)
class RevealedEnvironment:
    """A task's environment with its secrets decrypted, and the plain values to mask."""

    environment: dict[str, str]
    secrets_to_mask: tuple[str, ...]


def has_secret(value: str) -> bool:
    """Return whether ``value`` holds an ``ENCRYPTED[...]`` text."""
    return ENCRYPTED_VALUE.search(value) is not None


def reveal_secrets(
    environment: Mapping[str, str], reader: SecretReader, repository: str
) -> RevealedEnvironment:
    """Return ``environment`` with every ``ENCRYPTED[...]`` decrypted for ``repository``.

    Stored specs keep the ``ENCRYPTED[...]`` text; plain secrets exist only in the answer to
    the worker, and every one is also listed in ``secrets_to_mask`` so the worker hides it in
    logs. Every ``ENCRYPTED[...]`` in a value is decrypted, also one inside a longer value
    (after ``$VAR`` expansion, ``"Bearer $TOKEN"`` holds one); none is passed on verbatim.
    Raises ``SecretError`` naming the first variable whose value cannot be decrypted.
    """
    revealed: dict[str, str] = {}
    plain_values: dict[str, None] = {}  # ordered and without repeats
    for name, value in environment.items():
        if not has_secret(value):
            revealed[name] = value
            continue
        pieces: list[str] = []
        end = 0
        for match in ENCRYPTED_VALUE.finditer(value):
            try:
                plain = reader.decrypt(match.group(0), repository)
            except SecretError as error:
                raise SecretError(f"environment variable {name}: {error}") from None
            pieces += [value[end : match.start()], plain]
            end = match.end()
            if plain:  # masking "" would hide nothing and garble every log
                plain_values[plain] = None
        revealed[name] = "".join([*pieces, value[end:]])
    return RevealedEnvironment(revealed, tuple(plain_values))
