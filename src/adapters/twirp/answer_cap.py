"""The cap on a controller answer's size, applied by the Twirp client while it streams one in.

A worker's Twirp answers are a few KiB (the commands of a task, a poll with a few tasks); 1 MiB
log chunks travel the other way. An answer beyond the cap comes from a broken or hostile
controller: it is refused as soon as the cap is passed (an announced length before a byte of
the body is read), so that no answer, endless chunked ones included, can make the worker buffer
more than the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httpx

MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
"""The longest answer body the worker reads (counted after decoding, too)."""


class AnswerTooLargeError(httpx.RemoteProtocolError):
    """The answer's body is longer than the cap."""

    def __init__(self, limit: int, request: httpx.Request | None = None) -> None:
        super().__init__(f"the answer exceeds {limit} bytes", request=request)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Answer:
    """What the client needs of an HTTP answer, its body read whole (within the cap)."""

    status: int
    reason: str
    content: bytes


async def read_capped(response: httpx.Response, limit: int) -> Answer:
    """Read ``response``'s decoded body, failing as soon as it passes ``limit`` bytes."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise AnswerTooLargeError(limit, response.request)
    parts: list[bytes] = []
    total = 0
    # Decoded bytes are counted: a small compressed answer may inflate far past the cap.
    async for part in response.aiter_bytes():
        total += len(part)
        if total > limit:
            raise AnswerTooLargeError(limit, response.request)
        parts.append(part)
    return Answer(response.status_code, response.reason_phrase, b"".join(parts))
