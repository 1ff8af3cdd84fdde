"""Secret masking of log bytes, also when a secret is split across output chunks.

The masker scans leftmost-first and, at each position, replaces the longest secret that starts
there. Streaming gives the same bytes as masking the whole output at once: ``feed`` emits what
can no longer change and holds back only a tail that could still be the start of a secret (at
most the longest secret's length minus one byte).

Values shorter than ``MIN_SECRET_LENGTH`` characters are not masked: replacing every ``e`` or
``ok`` of a log would garble it while hiding nothing (a secret that short is guessed at once).
``unmaskable`` counts them, so that the caller can warn that they are left visible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_REPLACEMENT = b"HIDDEN-BY-CIRRUS-CI"
MIN_SECRET_LENGTH = 4
"""Secrets shorter than this many characters are left unmasked (see the module doc)."""


def maskable(secret: str) -> bool:
    """Whether ``secret`` is long enough to be masked."""
    return len(secret) >= MIN_SECRET_LENGTH


def unmaskable_count(secrets: Iterable[str]) -> int:
    """How many distinct non-empty ``secrets`` are too short to be masked."""
    return len({s for s in secrets if s and not maskable(s)})


class SecretMasker:
    """Replaces every secret in a stream of bytes by ``replacement``; one instance per stream."""

    __slots__ = ("_longest", "_pattern", "_pending", "_replacement", "_secrets", "unmaskable")

    def __init__(self, secrets: Iterable[str], replacement: bytes = DEFAULT_REPLACEMENT) -> None:
        given = tuple(secrets)
        self.unmaskable = unmaskable_count(given)
        encoded = {secret.encode("utf-8") for secret in given if maskable(secret)}
        # Longest first: literal alternatives are tried in order, so the first one that matches
        # at a position is the longest secret starting there.
        self._secrets: tuple[bytes, ...] = tuple(sorted(encoded, key=lambda s: (-len(s), s)))
        self._longest = len(self._secrets[0]) if self._secrets else 0
        self._pattern: re.Pattern[bytes] | None = (
            re.compile(b"|".join(re.escape(s) for s in self._secrets)) if self._secrets else None
        )
        self._replacement = replacement
        self._pending = b""

    @property
    def held_back(self) -> int:
        """How many bytes are buffered, waiting to know whether they start a secret."""
        return len(self._pending)

    def feed(self, data: bytes) -> bytes:
        """Take the next bytes of the stream; return the masked bytes that are safe to emit now."""
        if self._pattern is None:
            return data
        buffer = self._pending + data if self._pending else data
        out, self._pending = self._mask(buffer, final=False)
        return out

    def flush(self) -> bytes:
        """End of stream: return the rest, masked."""
        if self._pattern is None or not self._pending:
            self._pending = b""
            return b""
        out, _ = self._mask(self._pending, final=True)
        self._pending = b""
        return out

    def _mask(self, buffer: bytes, *, final: bool) -> tuple[bytes, bytes]:
        """Mask ``buffer`` up to the first position whose outcome may still change."""
        assert self._pattern is not None
        size = len(buffer)
        undecided_from = max(0, size - (self._longest - 1))
        parts: list[bytes] = []
        pos = 0
        hold = size if final else self._hold_point(buffer, undecided_from)
        while True:
            if hold < pos:
                # The last match swallowed the old hold point: look again behind it.
                hold = self._hold_point(buffer, pos)
            match = self._pattern.search(buffer, pos)
            # A match starting before the hold point is final: either every secret fits in the
            # bytes after its start, or those bytes cannot grow into a longer secret.
            if match is None or match.start() >= hold:
                parts.append(buffer[pos:hold])
                return b"".join(parts), buffer[hold:]
            parts.append(buffer[pos : match.start()])
            parts.append(self._replacement)
            pos = match.end()

    def _hold_point(self, buffer: bytes, start: int) -> int:
        """The first position from ``start`` whose tail is a proper prefix of some secret."""
        size = len(buffer)
        earliest = size
        for secret in self._secrets:
            first = secret[:1]
            candidate = buffer.find(first, start, earliest)
            while candidate != -1:
                tail = size - candidate
                if tail < len(secret) and buffer.endswith(secret[:tail]):
                    earliest = candidate
                    break
                candidate = buffer.find(first, candidate + 1, earliest)
        return earliest
