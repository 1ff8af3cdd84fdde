"""Secrets of the controller: ``ENCRYPTED[...]`` values and their key.

``SecretCipher`` encrypts and decrypts (the ``domain.secret_sealing.SecretSealer`` port);
``load_secret_cipher`` gets the key from the database, creating it on first start. Decrypting a
task's environment for its worker is ``domain.secret_sealing.reveal_secrets``.
"""

from __future__ import annotations

from adapters.secrets.cipher import SecretCipher
from adapters.secrets.key_store import SECRET_KEY_SETTING, load_secret_cipher
from domain.secret_sealing import SecretValueError

__all__ = [
    "SECRET_KEY_SETTING",
    "SecretCipher",
    "SecretValueError",
    "load_secret_cipher",
]
