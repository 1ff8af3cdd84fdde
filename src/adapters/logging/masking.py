"""A logging filter that hides registered secrets (tokens, ``secretsToMask``) in every record.

Values shorter than ``MIN_SECRET_LENGTH`` characters are not masked (they would garble every
line: ``e***it``); the first time one is met, the registry warns once that it stays visible.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from domain.masking import MIN_SECRET_LENGTH, maskable, unmaskable_count

MASK = "***"

log = logging.getLogger("cirrus")


class SecretRegistry:
    """A thread-safe, growing set of strings that must never be written to a log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._warned = False

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secrets; values under four characters are not masked (warned once)."""
        given = tuple(secrets)
        with self._lock:
            merged = set(self._secrets) | {s for s in given if maskable(s)}
            # Longest first, so a secret that contains another one is hidden whole.
            self._secrets = tuple(sorted(merged, key=lambda s: (-len(s), s)))
        self.warn_unmaskable(unmaskable_count(given))

    def warn_unmaskable(self, count: int) -> None:
        """Warn, the first time only, that ``count`` secrets are too short to be masked."""
        if count <= 0:
            return
        with self._lock:
            if self._warned:
                return
            self._warned = True
        # The values themselves are never named: they are secrets.
        log.warning(
            "%d secret value(s) shorter than %d characters cannot be masked and may appear in "
            "logs; use longer secrets (warned once)",
            count,
            MIN_SECRET_LENGTH,
        )

    def clear(self) -> None:
        """Forget every secret and the warning given (tests only)."""
        with self._lock:
            self._secrets = ()
            self._warned = False

    def snapshot(self) -> tuple[str, ...]:
        """The registered secrets, longest first."""
        return self._secrets

    def mask(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


_REGISTRY = SecretRegistry()


def secret_registry() -> SecretRegistry:
    """The process-wide registry that ``configure_logging``'s filter reads."""
    return _REGISTRY


def add_secret(secret: str) -> None:
    """Register one secret to be masked in every later log record."""
    _REGISTRY.add((secret,))


def add_secrets(secrets: Iterable[str]) -> None:
    """Register several secrets to be masked in every later log record."""
    _REGISTRY.add(secrets)


class SecretMaskingFilter(logging.Filter):
    """Rewrites each record so that no registered secret survives in its message or traceback."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self._registry = registry if registry is not None else _REGISTRY

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drops it."""
        if not self._registry.snapshot():
            return True
        # Render the message now: a secret may hide in an argument, not in the format string.
        record.msg = self._registry.mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._registry.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self._registry.mask(record.stack_info)
        return True
