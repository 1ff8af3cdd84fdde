"""Secrets of the controller: ``ENCRYPTED[...]`` values, their key, and decrypted environments.

``SecretCipher`` encrypts and decrypts (it is the ``SecretReader`` of parsing);
``load_secret_cipher`` gets the key from the database, creating it on first start;
``reveal_secrets`` decrypts a task's environment for its worker.
"""

from __future__ import annotations

from adapters.secrets.cipher import SecretCipher, SecretValueError
from adapters.secrets.environment import RevealedEnvironment, has_secret, reveal_secrets
from adapters.secrets.key_store import SECRET_KEY_SETTING, load_secret_cipher

__all__ = [
    "SECRET_KEY_SETTING",
    "RevealedEnvironment",
    "SecretCipher",
    "SecretValueError",
    "has_secret",
    "load_secret_cipher",
    "reveal_secrets",
]
