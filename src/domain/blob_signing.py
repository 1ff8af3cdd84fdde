"""The port that checks the signatures of ``/blobs/...`` URLs, and the error it refuses with.

The controller's filesystem blob store hands out URLs to its own ``/blobs`` endpoints, signed
with a key only the controller knows (``adapters.blobs.signing``); the endpoints check a
request against this port and answer 403 with the ``SignatureError``'s message.
"""

from __future__ import annotations

from typing import Protocol


class SignatureError(Exception):
    """A ``/blobs`` request is refused; the message says why in one line."""


class BlobUrlVerifier(Protocol):
    """Checks that a ``/blobs`` request carries a valid signature for its method and key."""

    def verify(self, method: str, key: str, expires: str | None, sig: str | None) -> None:
        """Return if ``sig`` allows ``method`` of ``key`` until ``expires`` (UNIX seconds, as
        text), which has not passed; else raise ``SignatureError`` saying why."""
        ...
