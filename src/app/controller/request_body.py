"""Reading request bodies with a cap: never more bytes than a method needs, never a stack
overflow on deeply nested JSON.

Without a cap, ten unauthenticated 50 MB bodies took the controller from 68 to 600 MiB: a body
is now refused by its ``Content-Length`` before a byte is read, and a chunked one as soon as it
passes the cap. JSON nested a hundred thousand levels deep exhausts the decoder's recursion;
it is refused, as is any document nested deeper than ``MAX_JSON_DEPTH``.
"""

from __future__ import annotations

import json
import re

from starlette.requests import Request

MAX_JSON_DEPTH = 64
"""Levels of nested objects and arrays a request body may have (the API needs 3)."""
_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyError(Exception):
    """A body is refused: ``status`` is 413 (too large) or 400 (unreadable), ``message`` why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def too_large(limit: int) -> BodyError:
    """Return the error of a body over ``limit`` bytes."""
    return BodyError(413, f"the request body is larger than the limit of {limit} bytes")


async def read_capped(request: Request, limit: int) -> bytes:
    """Return the body of ``request``, or raise ``BodyError`` (413) once it passes ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> object:
    """Return the JSON document of ``body``, or raise ``BodyError`` (400) naming the problem."""
    try:
        document: object = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as error:  # UnicodeDecodeError included
        raise BodyError(400, f"the request body is not JSON: {error}") from None
    _check_tree(document)
    return document


def _too_deep() -> BodyError:
    return BodyError(400, f"the request body is nested more than {MAX_JSON_DEPTH} levels deep")


def _check_tree(document: object) -> None:
    # Iterative: the check itself must not recurse as deeply as the document it refuses.
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if isinstance(value, dict):
            children: list[object] = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        pending.extend((child, depth + 1) for child in children)


def _check_text(text: str) -> None:
    # JSON may escape half of a surrogate pair alone (\ud800); no UTF-8 text, file, database
    # or process argument can hold it.
    match = _SURROGATE.search(text)
    if match is not None:
        raise BodyError(
            400,
            f"the request body holds a lone surrogate (U+{ord(match.group()):04X}) in a string",
        )


TWIRP_BODY_LIMIT = 256 * 1024
"""The largest body of a Twirp call (a poll of a worker running hundreds of tasks is 20 KiB)."""
TWIRP_BODY_LIMITS = {
    # A log chunk is at most 1 MiB, base64 in JSON: 1.34 MiB and the JSON around it.
    "AppendLogs": 2 * 1024 * 1024,
    # The results of every command of a task.
    "ReportCommandUpdates": 1024 * 1024,
    "ReportAgentFinished": 1024 * 1024,
    # A failure message may quote a long error.
    "TaskFailed": 1024 * 1024,
}
"""Methods that may need more than ``TWIRP_BODY_LIMIT``."""


def twirp_body_limit(method: str) -> int:
    """Return the largest body a Twirp ``method`` accepts."""
    return TWIRP_BODY_LIMITS.get(method, TWIRP_BODY_LIMIT)
