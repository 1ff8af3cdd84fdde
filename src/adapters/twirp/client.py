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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, TypeVar

import httpx

from adapters.twirp.answer_cap import MAX_ANSWER_BYTES, Answer, AnswerTooLargeError, read_capped
from adapters.twirp.blob_calls import BlobCalls
from adapters.twirp.codec import (
    CI_SERVICE,
    WORKERS_SERVICE,
    decode_commands_response,
    decode_poll_response,
    decode_query_running_tasks_response,
    decode_register_response,
    decode_upload_logs_response,
    decode_worker_status,
    encode_append_logs_request,
    encode_initial_commands_request,
    encode_poll_request,
    encode_register_request,
    encode_report_agent_finished_request,
    encode_report_command_updates_request,
    encode_task_failed_request,
    encode_task_identification,
    encode_update_status_request,
    method_path,
)
from adapters.twirp.errors import ProtocolDecodeError
from adapters.twirp.lean_transport import LeanHTTPTransport
from adapters.twirp.messages import (
    AppendLogsRequest,
    InitialCommandsRequest,
    RegisterRequest,
    ReportAgentFinishedRequest,
    ReportCommandUpdatesRequest,
    TaskFailedRequest,
    UpdateStatusRequest,
    task_identification_for,
)
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

# Twirp codes of the statuses a non-Twirp intermediary (a proxy) may answer with.
_STATUS_CODES: Final[Mapping[int, str]] = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "already_exists",
    429: "resource_exhausted",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "deadline_exceeded",
}
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


def _proxied(url: httpx.URL) -> bool:
    """Whether the environment (or the system) names a proxy that may apply to ``url``.

    ``NO_PROXY`` is read as httpx reads it: ``*``, or hosts that also cover their subdomains
    (a leading dot is optional), with or without ``:port``.
    """
    proxies = urllib.request.getproxies()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    host = url.host.lower()
    address = f"{host}:{url.port or 80}"
    for entry in proxies.get("no", "").split(","):
        entry = entry.strip().lower().lstrip(".")
        if entry == "*" or entry in (host, address) or host.endswith("." + entry):
            return False
    return True


def _direct_http(endpoint: str) -> bool:
    """Whether calls to ``endpoint`` may take the lean transport: direct plain ``http://``.

    httpx ignores proxy settings once it is given a transport of its own, so calls that a
    proxy setting may cover, and ``https://`` ones, use httpx's own client and transports
    (which honour ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` and
    ``SSL_CERT_FILE``).
    """
    url = httpx.URL(endpoint)
    return url.scheme == "http" and not _proxied(url)


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
        # Exactly one of the two is set. Direct http:// calls go straight to the lean transport
        # (a fraction of httpx's CPU per call: no client layer of cookies, redirects and auth,
        # none of which Twirp uses).
        self._lean: LeanHTTPTransport | None = None
        self._http: httpx.AsyncClient | None = http_client
        if http_client is None:
            if _direct_http(self._endpoint):
                self._lean = LeanHTTPTransport(max_answer_bytes=max_answer_bytes)
            else:
                self._http = httpx.AsyncClient(limits=_LIMITS)

    @property
    def endpoint(self) -> str:
        """The controller's base URL (without a trailing slash)."""
        return self._endpoint

    @property
    def session_token(self) -> str:
        """The session token of the last successful registration ("" before one)."""
        return self._session_token

    async def aclose(self) -> None:
        """Close the HTTP client (or lean transport) if this object created it."""
        if self._lean is not None:
            await self._lean.aclose()
        elif self._owns_http_client and self._http is not None:
            await self._http.aclose()

    # --- CirrusWorkersService ---------------------------------------------------------------

    async def register(self, worker_info: WorkerInfo) -> str:
        """Register with the registration token; return and keep the session token."""
        request = RegisterRequest(self._registration_token, worker_info)
        body = await self._call(
            WORKERS_SERVICE, "Register", encode_register_request(request), headers={}
        )
        self._session_token = self._decode("Register", decode_register_response, body).session_token
        return self._session_token

    async def poll(self, request: PollRequest, timeout_seconds: float) -> PollResponse:
        """Poll for work, allowing the controller to hold the call for ``timeout_seconds``."""
        body = await self._call(
            WORKERS_SERVICE,
            "Poll",
            encode_poll_request(request),
            headers=self._worker_headers(),
            deadline_seconds=timeout_seconds,
        )
        return self._decode("Poll", decode_poll_response, body)

    async def task_started(self, task: TaskRef) -> None:
        """Report that the task's instance exists and commands are about to run."""
        identification = task_identification_for(task.task_id, task.client_secret)
        await self._task_call(
            WORKERS_SERVICE, "TaskStarted", task, encode_task_identification(identification)
        )

    async def task_failed(self, task: TaskRef, message: str) -> None:
        """Report that the task could not run."""
        identification = task_identification_for(task.task_id, task.client_secret)
        request = TaskFailedRequest(message=message, task_identification=identification)
        await self._task_call(
            WORKERS_SERVICE, "TaskFailed", task, encode_task_failed_request(request)
        )

    async def task_stopped(self, task: TaskRef) -> None:
        """Report that the task is over and its instance cleaned up."""
        identification = task_identification_for(task.task_id, task.client_secret)
        await self._task_call(
            WORKERS_SERVICE, "TaskStopped", task, encode_task_identification(identification)
        )

    async def update_status(self, disabled: bool) -> bool:
        """Set the worker's disabled flag; return the flag the controller now holds."""
        body = await self._call(
            WORKERS_SERVICE,
            "UpdateStatus",
            encode_update_status_request(UpdateStatusRequest(disabled=disabled)),
            headers=self._worker_headers(),
        )
        return self._decode("UpdateStatus", decode_worker_status, body).disabled

    async def query_running_tasks(self) -> RunningTasksStatus:
        """Ask the controller which tasks it believes this worker runs."""
        body = await self._call(
            WORKERS_SERVICE, "QueryRunningTasks", {}, headers=self._worker_headers()
        )
        return self._decode("QueryRunningTasks", decode_query_running_tasks_response, body)

    # --- CirrusCIService --------------------------------------------------------------------

    async def initial_commands(self, task: TaskRef, local_timestamp: int) -> CommandsResponse:
        """Fetch the task's environment, commands, timeout and secrets."""
        request = InitialCommandsRequest(local_timestamp=local_timestamp)
        body = await self._task_call(
            CI_SERVICE, "InitialCommands", task, encode_initial_commands_request(request)
        )
        return self._decode("InitialCommands", decode_commands_response, body)

    async def report_command_updates(self, task: TaskRef, updates: Sequence[CommandResult]) -> None:
        """Report command status changes."""
        request = ReportCommandUpdatesRequest(updates=tuple(updates))
        await self._task_call(
            CI_SERVICE, "ReportCommandUpdates", task, encode_report_command_updates_request(request)
        )

    async def append_logs(self, task: TaskRef, command_name: str, data: bytes) -> int:
        """Append log bytes to a command's log; return the bytes the controller logged."""
        request = AppendLogsRequest(command_name=command_name, data=data)
        body = await self._task_call(
            CI_SERVICE, "AppendLogs", task, encode_append_logs_request(request)
        )
        return self._decode("AppendLogs", decode_upload_logs_response, body).bytes_logged

    async def heartbeat(self, task: TaskRef) -> None:
        """Tell the controller the task is alive."""
        await self._task_call(CI_SERVICE, "Heartbeat", task, {})

    async def report_agent_finished(self, task: TaskRef, results: Sequence[CommandResult]) -> None:
        """Report the final results of every command."""
        request = ReportAgentFinishedRequest(command_results=tuple(results))
        await self._task_call(
            CI_SERVICE, "ReportAgentFinished", task, encode_report_agent_finished_request(request)
        )

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

    async def _task_call(
        self, service: str, method: str, task: TaskRef, body: dict[str, object]
    ) -> object:
        headers = self.task_headers(task)
        return await self._call(
            service, method, body, headers=headers, secrets=(task.client_secret,)
        )

    async def _call(
        self,
        service: str,
        method: str,
        body: dict[str, object],
        *,
        headers: Mapping[str, str],
        deadline_seconds: float | None = None,
        secrets: Sequence[str] = (),
    ) -> object:
        """POST one Twirp request; return the parsed JSON of a 2xx answer."""
        seconds = self._call_timeout if deadline_seconds is None else deadline_seconds
        scrub = self._scrubber(secrets)
        url = self._endpoint + method_path(service, method)
        all_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        all_headers.update(headers)
        limits = httpx.Timeout(seconds, connect=min(_CONNECT_TIMEOUT, seconds))
        try:
            # httpx bounds each phase; the overall deadline also bounds a server trickling bytes.
            async with asyncio.timeout(seconds):
                response = await self._post(url, json.dumps(body).encode(), all_headers, limits)
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
        """POST and read the answer within the cap, through the lean transport or httpx."""
        if self._lean is None:
            assert self._http is not None  # one of the two is always set
            request = self._http.build_request(
                "POST", url, content=content, headers=headers, timeout=limits
            )
            response = await self._http.send(request, stream=True)
        else:
            request = httpx.Request(
                "POST",
                url,
                content=content,
                headers=headers,
                extensions={"timeout": limits.as_dict()},
            )
            response = await self._lean.handle_async_request(request)
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
        code, msg = twirp if twirp else (_STATUS_CODES.get(status, "unknown"), "")
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

    def _decode(self, method: str, decode: Callable[[object], T], body: object) -> T:
        try:
            return decode(body)
        except ProtocolDecodeError as exc:
            scrub = self._scrubber(())
            raise DefiniteControllerError(
                "malformed_response", scrub(f"{method}: unexpected answer: {exc}")
            ) from None

    def _scrubber(self, extra: Sequence[str]) -> _Scrubber:
        secrets = [self._registration_token, self._session_token, *extra]
        return _Scrubber(s for s in secrets if len(s) >= _MIN_SECRET_LENGTH)
