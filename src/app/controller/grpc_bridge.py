"""The controller's services for its gRPC server: the very handlers of the Twirp services,
reached with proto3 JSON objects (``domain.wire_protocol.WireCalls``).

What differs for the original Go worker and its agent is said here, and only here:

* the agent authenticates with its task's id and client secret alone (no worker headers);
* ``InitialCommands`` answers the task's ``serverToken``, which the agent checks, and a clone
  step the Go agent can run (``for_go_agent``);
* the agent's problem reports: an error fails the task, a warning or a signal is logged.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import Message

from app.controller.auth import AGENT_CALL, TASK_ID_HEADER, WORKER_NAME_HEADER, AuthError
from app.controller.twirp_errors import TwirpError
from app.controller.twirp_services import TwirpServices
from domain.clone import NO_SOURCE_MESSAGE, source_kind
from domain.control_characters import printable
from domain.store import BuildStore, StoreError
from domain.wire_protocol import (
    CI_SERVICE,
    WORKERS_SERVICE,
    CallerGone,
    CallRefused,
    JsonObject,
    ProtocolDecodeError,
    WireCodec,
)

log = logging.getLogger("cirrus.controller")

LOGGED_REPORTS = {"ReportAgentWarning": logging.WARNING, "ReportAgentSignal": logging.INFO}
"""Agent reports the controller only logs, at this level."""


def _request_until(gone: CallerGone) -> Request:
    """Return a request whose ``receive`` reports a disconnect once ``gone`` is set: what a
    held ``Poll`` watches to stop waiting for a caller that went away."""

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


SNAPSHOT_CLONE_MESSAGE = (
    "this task's source is an uploaded snapshot, which the Go agent cannot fetch; "
    "run it on a worker of this project"
)


def _script(*lines: str) -> JsonObject:
    return {"scriptInstruction": {"scripts": list(lines)}}


def for_go_agent(commands: list[JsonObject], answer: JsonObject) -> list[JsonObject]:
    """Return ``commands`` as the Go agent can run them: its clone step knows git remotes only,
    so a task without a source gets this project's "nothing to clone" step as a script, and a
    snapshot source fails with a message saying why."""
    kind = source_kind(answer.get("environment", {}))
    if kind == "git":
        return commands
    replacement = (
        _script(f"echo {shlex.quote(NO_SOURCE_MESSAGE)}")
        if kind == "none"
        else _script(f"echo {shlex.quote(SNAPSHOT_CLONE_MESSAGE)} >&2", "exit 1")
    )
    return [
        {**{k: v for k, v in command.items() if k != "cloneInstruction"}, **replacement}
        if "cloneInstruction" in command
        else command
        for command in commands
    ]


class GrpcBridge:
    """Answers gRPC calls with the Twirp services' handlers (a ``WireCalls``)."""

    def __init__(self, twirp: TwirpServices, store: BuildStore, codec: WireCodec) -> None:
        self._twirp = twirp
        self._store = store
        self._codec = codec  # the Twirp services' own: requests decode to the same values

    async def unary(
        self,
        service: str,
        method: str,
        request: JsonObject,
        metadata: Mapping[str, str],
        gone: CallerGone,
    ) -> JsonObject:
        """Answer one call (``CallRefused`` with the Twirp code the Twirp call would get)."""
        headers = dict(metadata)
        if service == CI_SERVICE and WORKER_NAME_HEADER not in headers:
            # The agent's credentials: the task's id and client secret, nothing else.
            headers[AGENT_CALL] = "1"
        try:
            return await self._answer(service, method, request, headers, gone)
        except (TwirpError, AuthError) as error:
            if isinstance(error, AuthError):
                log.info("gRPC %s/%s refused: %s", service, method, printable(error.message))
            raise CallRefused(error.code, error.message) from None
        except ProtocolDecodeError as error:
            raise CallRefused("invalid_argument", f"{method}: {error}") from None
        except StoreError as error:
            log.error("gRPC %s/%s: the store failed: %s", service, method, error)
            raise CallRefused("unavailable", "the controller's database failed") from None
        except CallRefused:
            raise
        except Exception:
            log.exception("gRPC %s/%s failed", service, method)
            raise CallRefused("internal", f"{method} failed inside the controller") from None

    async def _answer(
        self,
        service: str,
        method: str,
        request: JsonObject,
        headers: Mapping[str, str],
        gone: CallerGone,
    ) -> JsonObject:
        if service == CI_SERVICE and method == "ReportAgentError":
            # The agent could not run the task (it reports no results after this): fail it.
            message = str(request.get("message", "")) or "the agent reported an error"
            await self._call(WORKERS_SERVICE, "TaskFailed", {"message": message}, headers, gone)
            return {}
        if service == CI_SERVICE and method in LOGGED_REPORTS:
            await self._call(CI_SERVICE, "Heartbeat", {}, headers, gone)  # authenticates
            what = request.get("message") or request.get("signal") or ""
            log.log(
                LOGGED_REPORTS[method],
                "task %s: agent %s: %s",
                printable(headers.get(TASK_ID_HEADER, "")),
                method.removeprefix("ReportAgent").lower(),
                printable(str(what)),
            )
            return {}
        answer = await self._call(service, method, request, headers, gone)
        if service == CI_SERVICE and method == "InitialCommands":
            # The agent refuses to run commands that do not come with its server token.
            task = await self._store.get_task(headers.get(TASK_ID_HEADER, ""))
            answer["serverToken"] = task.server_secret if task is not None else ""
            answer["commands"] = for_go_agent(answer.get("commands", []), answer)
        return answer

    async def _call(
        self,
        service: str,
        method: str,
        request: JsonObject,
        headers: Mapping[str, str],
        gone: CallerGone,
    ) -> JsonObject:
        handler = self._twirp.handler(service, method)
        if handler is None:
            raise CallRefused(
                "unimplemented", f"{service}/{method} is not served by this controller"
            )
        message = self._codec.decode_request(service, method, request)
        answer = await handler(message, headers, _request_until(gone))
        return self._codec.encode_response(service, method, answer)
