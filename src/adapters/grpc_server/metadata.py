"""Who a gRPC call comes from: its metadata, and Cirrus's older in-body task identification.

The Go worker and agent name their task with the metadata ``org.cirruslabs.task-id`` and
``org.cirruslabs.client-secret``. Older agents also put ``TaskIdentification{task_id, secret}``
into the request; it is used only when the metadata names no task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

TASK_ID_KEY = "org.cirruslabs.task-id"
CLIENT_SECRET_KEY = "org.cirruslabs.client-secret"


def call_metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    """Return a call's text metadata with lowercase keys.

    Pseudo-headers (``:path``…) and binary values (``-bin``) are left out: the controller's
    services read text keys only, and no caller may pose as one of the internal keys, which
    start with ``:`` (``app.controller.auth.AGENT_CALL``).
    """
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key.startswith(":") or not isinstance(value, str):
            continue
        metadata[key.lower()] = value
    return metadata


def _identification(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    nested = body.get("taskIdentification")
    if isinstance(nested, Mapping):
        return nested
    # TaskStarted and TaskStopped take a bare TaskIdentification.
    if "taskId" in body and set(body) <= {"taskId", "secret"}:
        return body
    return None


def with_old_identification(metadata: Mapping[str, str], body: Mapping[str, Any]) -> dict[str, str]:
    """Return ``metadata``, naming the task of the body's ``TaskIdentification`` if it names
    none (a task id of 0 is the Go code's "no identification")."""
    found = dict(metadata)
    identification = _identification(body)
    if found.get(TASK_ID_KEY) or identification is None:
        return found
    task_id = str(identification.get("taskId", "0"))
    if task_id in ("", "0"):
        return found
    found[TASK_ID_KEY] = task_id
    found.setdefault(CLIENT_SECRET_KEY, str(identification.get("secret", "")))
    return found
