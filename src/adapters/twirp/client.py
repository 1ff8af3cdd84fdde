"""Twirp JSON client of one controller: the worker's ``ControllerClient``.

Each method makes exactly one HTTP call (retrying is the caller's decision) and translates every
failure into the ``ControllerError`` hierarchy:

* HTTP 5xx or 429, connection errors, timeouts -> ``TransientControllerError`` (the Twirp code of
  the body when there is one, else ``unavailable``/``deadline_exceeded``/the status's code);
* any other 4xx -> ``DefiniteControllerError`` with the Twirp code (from the body, else from the
  status), ``SessionLostError`` for ``unauthenticated``;
* a 2xx whose body is not JSON or not the expected message, any other status (a redirect,
  say), and an answer longer than ``max_answer_bytes`` (16 MiB by default, decoded, read no
  further than that) -> ``DefiniteControllerError("malformed_response", …)``: the controller did
  answer, and asking again at once will not make the answer readable.

Tokens and client secrets travel only in headers and bodies; they are scrubbed from every
exception message (a controller might echo them) and never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypeVar

import httpx
from httpx_aiohttp import AiohttpTransport, HttpxAiohttpClient

from adapters.twirp.answer_cap import MAX_ANSWER_BYTES, Answer, AnswerTooLargeError, read_capped
from adapters.twirp.blob_calls import BlobCalls
from adapters.twirp.codec import CI_SERVICE, WORKERS_SERVICE, decode, encode, method_path
from adapters.twirp.errors import ProtocolDecodeError, code_of_http_status
from adapters.twirp.task_mapping import result_to_proto
from adapters.twirp.worker_mapping import task_identification_for, worker_info_to_proto
from adapters.wire import cirrus_ci_service_pb2 as wire
from adapters.wire import cirrus_worker_additions_pb2 as additions
from domain.errors import (
    ConfigError,
    DefiniteControllerError,
    SessionLostError,
    TransientControllerError,
)
from domain.protocol import (
    CommandResult,
    CommandsResponse,
    PollRequest,
    PollResponse,
    RunningTasksStatus,
    TaskRef,
    WorkerInfo,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_CONNECT_TIMEOUT: Final = 10.0
_MIN_SECRET_LENGTH: Final = 4  # shorter values would scrub ordinary words from messages
_MESSAGE_LIMIT: Final = 500


def _twirp_error(content: bytes) -> tuple[str, str] | None:
    """Return ``(code, msg)`` of a Twirp error body, or ``None`` if it is not one."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code, msg = body.get("code"), body.get("msg")
    if not isinstance(code, str) or not code:
        return None
    return code, msg if isinstance(msg, str) else ""


class _Scrubber:
    """Replaces every known secret in a text by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted(set(secrets), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# A worker talks to one controller: a poll plus a few report lanes at once. A small pool keeps
# httpcore's per-request scan of idle connections short.
_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=6)


def proxies_in_environment() -> bool:
    """Whether the environment names an HTTP proxy (``HTTP_PROXY``, ``ALL_PROXY``, ...)."""
    return any(scheme != "no" for scheme in urllib.request.getproxies())


class TwirpControllerClient(BlobCalls):
    """A ``ControllerClient`` speaking Twirp v7 JSON over HTTP(S) to one controller (the cache
    and artifact calls come from ``BlobCalls``)."""

    def __init__(
        self,
        endpoint: str,
        registration_token: str,
        worker_name: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        call_timeout: float = 30.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError("endpoint", f"must start with http:// or https://, got {endpoint!r}")
        if call_timeout <= 0:
            raise ConfigError("call_timeout", f"must be positive, got {call_timeout!r}")
        self._endpoint = endpoint.rstrip("/")
        self._registration_token = registration_token
        self._worker_name = worker_name
        self._session_token = ""
        self._call_timeout = call_timeout
        self._max_answer_bytes = max_answer_bytes
        self._owns_http_client = http_client is None
        # httpx's API over aiohttp's transport: about twice the calls per CPU second of httpx's
        # own transport on a busy worker (benchmarks/README.md). httpx's client honours
        # HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY, so it carries the calls when a proxy is
        # named. Without one, requests go straight to the transport (its public
        # ``handle_async_request``): the client's per-request work (merging headers, cookies,
        # redirects, proxy routing) cost ~160 us of the worker's CPU per call, a tenth of a
        # task's. The transport reads SSL_CERT_FILE/SSL_CERT_DIR as httpx does.
        self._transport: httpx.AsyncBaseTransport | None = None
        self._http: httpx.AsyncClient | None
        if http_client is not None:
            self._http = http_client
        elif proxies_in_environment():
            self._http = HttpxAiohttpClient(limits=_LIMITS)
        else:
            self._http = None
            self._transport = AiohttpTransport(limits=_LIMITS)
        self._urls: dict[str, httpx.URL] = {}

    @property
    def endpoint(self) -> str:
        """The controller's base URL (without a trailing slash)."""
        return self._endpoint

    @property
    def session_token(self) -> str:
        """The session token of the last successful registration ("" before one)."""
        return self._session_token

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http_client:
            if self._http is not None:
                await self._http.aclose()
            if self._transport is not None:
                await self._transport.aclose()

    # --- CirrusWorkersService ---------------------------------------------------------------

    async def register(self, worker_info: WorkerInfo) -> str:
        """Register with the registration token; return and keep the session token."""
        request = wire.RegisterRequest(
            registration_token=self._registration_token,
            worker_info=worker_info_to_proto(worker_info),
        )
        body = await self._call(WORKERS_SERVICE, "Register", request, headers={})
        self._session_token = self._decode("Register", body, wire.RegisterResponse).session_token
        return self._session_token

    async def poll(self, request: PollRequest, timeout_seconds: float) -> PollResponse:
        """Poll for work, allowing the controller to hold the call for ``timeout_seconds``."""
        headers = self._worker_headers()
        body = await self._call(
            WORKERS_SERVICE, "Poll", request, headers=headers, deadline_seconds=timeout_seconds
        )
        return self._decode("Poll", body, PollResponse)

    async def task_started(self, task: TaskRef) -> None:
        """Report that the task's instance exists and commands are about to run."""
        identification = task_identification_for(task.task_id, task.client_secret)
        await self._task_call(WORKERS_SERVICE, "TaskStarted", task, identification)

    async def task_failed(self, task: TaskRef, message: str) -> None:
        """Report that the task could not run."""
        identification = task_identification_for(task.task_id, task.client_secret)
        request = wire.TaskFailedRequest(message=message, task_identification=identification)
        await self._task_call(WORKERS_SERVICE, "TaskFailed", task, request)

    async def task_stopped(self, task: TaskRef) -> None:
        """Report that the task is over and its instance cleaned up."""
        identification = task_identification_for(task.task_id, task.client_secret)
        await self._task_call(WORKERS_SERVICE, "TaskStopped", task, identification)

    async def update_status(self, disabled: bool) -> bool:
        """Set the worker's disabled flag; return the flag the controller now holds."""
        request = wire.UpdateStatusRequest(disabled=disabled)
        body = await self._call(
            WORKERS_SERVICE, "UpdateStatus", request, headers=self._worker_headers()
        )
        return self._decode("UpdateStatus", body, wire.WorkerStatus).disabled

    async def query_running_tasks(self) -> RunningTasksStatus:
        """Ask the controller which tasks it believes this worker runs."""
        request = wire.QueryRunningTasksRequest()
        body = await self._call(
            WORKERS_SERVICE, "QueryRunningTasks", request, headers=self._worker_headers()
        )
        return self._decode("QueryRunningTasks", body, RunningTasksStatus)

    # --- CirrusCIService --------------------------------------------------------------------

    async def initial_commands(self, task: TaskRef, local_timestamp: int) -> CommandsResponse:
        """Fetch the task's environment, commands, timeout and secrets."""
        request = wire.InitialCommandsRequest(local_timestamp=local_timestamp)
        body = await self._task_call(CI_SERVICE, "InitialCommands", task, request)
        return self._decode("InitialCommands", body, CommandsResponse)

    async def report_command_updates(self, task: TaskRef, updates: Sequence[CommandResult]) -> None:
        """Report command status changes."""
        request = wire.ReportCommandUpdatesRequest(updates=[result_to_proto(u) for u in updates])
        await self._task_call(CI_SERVICE, "ReportCommandUpdates", task, request)

    async def append_logs(
        self, task: TaskRef, command_name: str, data: bytes, offset: int | None = None
    ) -> int:
        """Append log bytes sent at ``offset`` of a command's log; return the bytes logged."""
        request = additions.AppendLogsRequest(command_name=command_name, data=data, offset=offset)
        body = await self._task_call(CI_SERVICE, "AppendLogs", task, request)
        return self._decode("AppendLogs", body, wire.UploadLogsResponse).bytes_logged

    async def heartbeat(self, task: TaskRef) -> None:
        """Tell the controller the task is alive."""
        await self._task_call(CI_SERVICE, "Heartbeat", task, wire.HeartbeatRequest())

    async def report_agent_finished(self, task: TaskRef, results: Sequence[CommandResult]) -> None:
        """Report the final results of every command."""
        request = wire.ReportAgentFinishedRequest(
            command_results=[result_to_proto(r) for r in results]
        )
        await self._task_call(CI_SERVICE, "ReportAgentFinished", task, request)

    # --- one call ---------------------------------------------------------------------------

    def _worker_headers(self) -> dict[str, str]:
        return {
            "registration-token": self._registration_token,
            "session-token": self._session_token,
            "worker-name": self._worker_name,
        }

    def task_headers(self, task: TaskRef) -> dict[str, str]:
        """The headers of a task-scoped call (also accepted by the snapshot download)."""
        headers = self._worker_headers()
        headers["org.cirruslabs.task-id"] = task.task_id
        headers["org.cirruslabs.client-secret"] = task.client_secret
        return headers

    async def _task_call(self, service: str, method: str, task: TaskRef, message: object) -> object:
        headers = self.task_headers(task)
        return await self._call(
            service, method, message, headers=headers, secrets=(task.client_secret,)
        )

    async def _call(
        self,
        service: str,
        method: str,
        message: object,
        *,
        headers: Mapping[str, str],
        deadline_seconds: float | None = None,
        secrets: Sequence[str] = (),
    ) -> object:
        """POST one Twirp request (a domain value or a generated message); return the parsed
        JSON of a 2xx answer."""
        seconds = self._call_timeout if deadline_seconds is None else deadline_seconds
        scrub = self._scrubber(secrets)
        url = self._endpoint + method_path(service, method)
        all_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        all_headers.update(headers)
        limits = httpx.Timeout(seconds, connect=min(_CONNECT_TIMEOUT, seconds))
        content = json.dumps(encode(message)).encode()
        try:
            # httpx bounds each phase; the overall deadline also bounds a server trickling bytes.
            async with asyncio.timeout(seconds):
                response = await self._post(url, content, all_headers, limits)
        except httpx.ConnectTimeout as exc:
            # Never connected, so nothing reached the controller: unreachable, like a refused
            # connection (which aiohttp's transport reports as a connect timeout).
            detail = str(exc) or "no connection"
            raise TransientControllerError(
                "unavailable", scrub(f"{method}: {self._endpoint} unreachable: {detail}")
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            raise TransientControllerError(
                "deadline_exceeded",
                f"{method}: no answer from {self._endpoint} within {seconds:g} s",
            ) from None
        except AnswerTooLargeError:
            # Before TransportError (its base): a hostile or broken controller must not make
            # the worker buffer hundreds of MB; callers back off as from any unreadable answer.
            raise DefiniteControllerError(
                "malformed_response",
                f"{method}: the answer of {self._endpoint} exceeds "
                f"{self._max_answer_bytes} bytes; not read",
            ) from None
        except UnicodeEncodeError:
            # httpx sends header values as ASCII; say which header without echoing its value.
            names = [k for k, v in all_headers.items() if not v.isascii()]
            raise DefiniteControllerError(
                "invalid_argument", f"{method}: header value is not ASCII: {', '.join(names)}"
            ) from None
        except httpx.UnsupportedProtocol as exc:
            raise DefiniteControllerError("invalid_endpoint", scrub(f"{method}: {exc}")) from None
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise TransientControllerError(
                "unavailable", scrub(f"{method}: {self._endpoint} unreachable: {detail}")
            ) from None
        log.debug("%s/%s answered HTTP %d", service, method, response.status)
        return self._answer(method, response, scrub)

    async def _post(
        self, url: str, content: bytes, headers: Mapping[str, str], limits: httpx.Timeout
    ) -> Answer:
        """POST and stream the answer in, reading no further than the cap."""
        parsed = self._urls.get(url)
        if parsed is None:
            # httpx parses a URL string on every request; a worker calls the same ~15 URLs.
            parsed = self._urls[url] = httpx.URL(url)
        if self._transport is not None:
            request = httpx.Request(
                "POST",
                parsed,
                content=content,
                headers=headers,
                extensions={"timeout": limits.as_dict()},
            )
            response = await self._transport.handle_async_request(request)
        else:
            assert self._http is not None
            request = self._http.build_request(
                "POST", parsed, content=content, headers=headers, timeout=limits
            )
            response = await self._http.send(request, stream=True)
        try:
            return await read_capped(response, self._max_answer_bytes)
        finally:
            await response.aclose()

    def _answer(self, method: str, response: Answer, scrub: _Scrubber) -> object:
        status = response.status
        if 200 <= status < 300:
            try:
                return json.loads(response.content)
            except ValueError:
                raise DefiniteControllerError(
                    "malformed_response", f"{method}: HTTP {status} answer is not JSON"
                ) from None
        twirp = _twirp_error(response.content)
        code, msg = twirp if twirp else (code_of_http_status(status), "")
        # Scrub before cutting, so that no part of a secret survives the cut.
        text = f"{method}: HTTP {status}: {scrub(msg)[:_MESSAGE_LIMIT] or response.reason}"
        if code == "unimplemented":
            # A controller without this call (e.g. no blob store) will not grow it on a retry.
            raise DefiniteControllerError(code, text)
        if status >= 500 or status == 429:
            raise TransientControllerError(code, text)
        if 400 <= status < 500:
            if code == "unauthenticated":
                raise SessionLostError(code, text)
            raise DefiniteControllerError(code, text)
        raise DefiniteControllerError("malformed_response", text)

    def _decode(self, method: str, body: object, kind: type[T]) -> T:
        try:
            return decode(body, kind)
        except ProtocolDecodeError as exc:
            scrub = self._scrubber(())
            raise DefiniteControllerError(
                "malformed_response", scrub(f"{method}: unexpected answer: {exc}")
            ) from None

    def _scrubber(self, extra: Sequence[str]) -> _Scrubber:
        secrets = [self._registration_token, self._session_token, *extra]
        return _Scrubber(s for s in secrets if len(s) >= _MIN_SECRET_LENGTH)
