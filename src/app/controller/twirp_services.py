"""``CirrusWorkersService`` and ``CirrusCIService`` over Twirp JSON (PROTOCOL.md).

One Starlette endpoint takes every ``POST /twirp/...`` call: it finds the method from the path,
decodes the request with the codec it is given (a ``domain.wire_protocol.WireCodec``, which
hands over domain values only), checks the caller's credentials and answers with the encoded
response, or with a Twirp error body ``{"code", "msg"}`` and the matching HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from app.controller.auth import (
    REGISTRATION_TOKEN_HEADER,
    SESSION_TOKEN_HEADER,
    AuthError,
    TaskCaller,
    WorkerAuthenticator,
    new_session_token,
)
from app.controller.blob_calls import BLOB_METHODS, BlobCalls, no_blob_store
from app.controller.clone_tokens import CloneTokens
from app.controller.long_poll import PollTicket, PollWaiters
from app.controller.request_body import BodyError, parse_json, read_capped, twirp_body_limit
from app.controller.scheduler_service import FIRST_QUEUE_PAGE_SIZE, SchedulerService
from app.controller.task_logs import LogChunkTooLarge, TaskLogWriter
from app.controller.twirp_errors import TwirpError, twirp_error_response
from domain.cirrus_config.context import NoSecrets, SecretError, SecretReader
from domain.control_characters import label_problem, printable
from domain.ports import Clock
from domain.protocol import (
    AgentAwareTask,
    CommandsResponse,
    PollRequest,
    PollResponse,
    RunningTasksStatus,
)
from domain.repositories import REPOSITORY_VARIABLE, RepositoryStore
from domain.secret_sealing import reveal_secrets
from domain.store import SchedulingStore, StoreError, TaskRecord, WorkerCheckIn, hash_token
from domain.task_environment import sent_environment
from domain.wire_protocol import (
    CI_SERVICE,
    WORKERS_SERVICE,
    ProtocolDecodeError,
    UnknownMethodError,
    WireCodec,
)
from domain.worker_calls import (
    AgentFinished,
    CommandUpdates,
    LogChunk,
    LogsAccepted,
    Registration,
    SessionGranted,
    StatusUpdate,
    TaskFailure,
    WorkerStatus,
)

log = logging.getLogger("cirrus.controller")

HOLD_JITTER = 0.1
"""A held poll is answered after 90-100 % of the poll interval, at random (spreads the polls)."""


def agent_aware_task(task: TaskRecord) -> AgentAwareTask:
    """Return the ``tasksToStart`` entry of a claimed task."""
    return AgentAwareTask(
        task_id=task.id,
        client_secret=task.client_secret,
        server_secret=task.server_secret,
        isolation=task.spec.isolation,
        resources_to_use=task.spec.resources,
    )


async def _until_disconnected(receive: Receive, ticket: PollTicket) -> None:
    # Once the body is read, the next ASGI message is the client going away.
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            ticket.abandon()
            return


def _still_running(caller: TaskCaller, method: str) -> TaskCaller:
    """Return ``caller`` unless its task was stopped: a finished task takes no more reports."""
    if caller.task.stopped:
        raise TwirpError(
            "failed_precondition",
            f"{method}: task {caller.task.id} has stopped; it takes no more reports or logs",
        )
    return caller


# A handler takes the decoded request (a domain value, as the codec reads it) and answers the
# response (a domain value the codec writes), or None for an empty one.
Handler = Callable[[object, Mapping[str, str], Request], Awaitable[object]]


class TwirpServices:
    """The Twirp half of the controller; ``handle`` is its Starlette endpoint."""

    def __init__(
        self,
        store: SchedulingStore,
        scheduler: SchedulerService,
        waiters: PollWaiters,
        auth: WorkerAuthenticator,
        clock: Clock,
        *,
        codec: WireCodec,
        logs: TaskLogWriter,
        poll_interval_seconds: int,
        secrets: SecretReader | None = None,
        repositories: RepositoryStore | None = None,
        blob_calls: BlobCalls | None = None,
    ) -> None:
        self._store = store
        self._codec = codec
        self._blob_calls = blob_calls  # None: no blob store
        self._logs = logs
        self._secrets: SecretReader = secrets if secrets is not None else NoSecrets()
        # The registered repositories, whose clone tokens tasks get (None: no registry).
        self._clone_tokens = CloneTokens(repositories, self._secrets)
        # Why a build waits for an approval (a fork's pull request; ``forge_setup`` sets it):
        # such a task never gets its secrets, even if a worker got hold of it.
        self.approval_wait: Callable[[str], Awaitable[str | None]] | None = None
        self._scheduler = scheduler
        self._waiters = waiters
        self._auth = auth
        self._clock = clock
        self._poll_interval = poll_interval_seconds
        self._handlers: dict[tuple[str, str], Handler] = {
            (WORKERS_SERVICE, "Register"): self._register,
            (WORKERS_SERVICE, "Poll"): self._poll,
            (WORKERS_SERVICE, "TaskStarted"): self._task_started,
            (WORKERS_SERVICE, "TaskFailed"): self._task_failed,
            (WORKERS_SERVICE, "TaskStopped"): self._task_stopped,
            (WORKERS_SERVICE, "UpdateStatus"): self._update_status,
            (WORKERS_SERVICE, "QueryRunningTasks"): self._query_running_tasks,
            (CI_SERVICE, "InitialCommands"): self._initial_commands,
            (CI_SERVICE, "ReportCommandUpdates"): self._report_command_updates,
            (CI_SERVICE, "AppendLogs"): self._append_logs,
            (CI_SERVICE, "Heartbeat"): self._heartbeat,
            (CI_SERVICE, "ReportAgentFinished"): self._report_agent_finished,
            **{(CI_SERVICE, method): self._blob_call(method) for method in BLOB_METHODS},
        }

    def handler(self, service: str, method: str) -> Handler | None:
        """Return the handler of ``service/method`` (the gRPC services call the same ones)."""
        return self._handlers.get((service, method))

    async def handle(self, request: Request) -> Response:
        """Answer one Twirp call."""
        try:
            service, method = self._codec.route_of(request.url.path)
        except UnknownMethodError as error:
            return twirp_error_response("bad_route", str(error))
        if request.method != "POST":
            return twirp_error_response("bad_route", f"{method} takes POST, not {request.method}")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return twirp_error_response(
                "bad_route", f"unexpected Content-Type {content_type!r}; use application/json"
            )
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            if method != "Register":  # whose token is in its body
                # Before a byte of the body is read: a caller without the registration token
                # must not make the controller buffer and parse anything.
                self._auth.check_registration_token(headers.get(REGISTRATION_TOKEN_HEADER, ""))
            body = parse_json(await read_capped(request, twirp_body_limit(method)) or b"{}")
            message = self._codec.decode_request(service, method, body)
        except AuthError as error:
            return twirp_error_response(error.code, error.message)
        except BodyError as error:
            if error.status == 413:
                return JSONResponse(
                    {"code": "invalid_argument", "msg": f"{method}: {error.message}"},
                    status_code=413,
                )
            return twirp_error_response("malformed", f"{method}: {error.message}")
        except ProtocolDecodeError as error:
            return twirp_error_response("invalid_argument", f"{method}: {error}")
        try:
            answer = await self._handlers[(service, method)](message, headers, request)
            return JSONResponse(self._codec.encode_response(service, method, answer))
        except TwirpError as error:
            return twirp_error_response(error.code, error.message)
        except AuthError as error:
            log.info("%s/%s refused: %s", service, method, printable(error.message))
            return twirp_error_response(error.code, error.message)
        except StoreError as error:
            log.error("%s/%s: the store failed: %s", service, method, error)
            return twirp_error_response("unavailable", "the controller's database failed")
        except Exception:
            log.exception("%s/%s failed", service, method)
            return twirp_error_response("internal", f"{method} failed inside the controller")

    # --- CirrusWorkersService -----------------------------------------------------------------

    async def _register(self, message: object, _h: Mapping[str, str], _r: Request) -> object:
        assert isinstance(message, Registration)
        self._auth.check_registration_token(message.registration_token)
        info = message.worker_info
        name = info.labels.get("name", "")
        if not name:
            raise TwirpError("invalid_argument", 'workerInfo.labels must hold the "name" label')
        problem = label_problem(info.labels)
        if problem is not None:
            raise TwirpError("invalid_argument", f"workerInfo.labels: {problem}")
        token = new_session_token()
        await self._store.upsert_worker(
            name, info.labels, info.resources_total, hash_token(token), info.security_policy
        )
        log.info("worker %s registered", printable(name))
        return SessionGranted(session_token=token)

    async def _poll(self, message: object, headers: Mapping[str, str], request: Request) -> object:
        assert isinstance(message, PollRequest)
        reported = message.running_tasks
        # One store call authenticates, records the poll and reads what an idle look needs;
        # the look uses that read only if nothing in this process changed meanwhile.
        changes = self._scheduler.changes
        first_look = await self._auth.check_in(
            headers, message.resources_in_use, reported, queue_limit=FIRST_QUEUE_PAGE_SIZE
        )
        record, worker = first_look.worker, first_look.worker.name
        checked_in: WorkerCheckIn | None = first_look
        ticket = self._waiters.subscribe(worker)
        watcher = asyncio.create_task(_until_disconnected(request.receive, ticket))
        try:
            # Held a little less than the interval, by a random amount: workers started together
            # would otherwise poll in step forever, and every interval the controller would
            # answer them all at once, delaying whatever else it had to do.
            hold = self._poll_interval * (1.0 - HOLD_JITTER * random.random())
            deadline = self._clock.monotonic() + hold
            settle = True
            while True:
                to_stop, to_start = await self._scheduler.poll_pass(
                    record,
                    reported,
                    settle=settle,
                    claim=not ticket.done,
                    ticket=ticket,
                    checked_in=checked_in,
                    changes_at_check_in=changes,
                    reported_tasks=first_look.reported,
                )
                checked_in = None  # read once: a woken look reads again
                if to_stop or to_start or ticket.done:
                    break
                if not await ticket.wait(deadline - self._clock.monotonic()):
                    break
                settle = False
                # Woken: the worker may have been paused or resumed meanwhile.
                record = await self._store.get_worker(worker) or record
        finally:
            self._waiters.unsubscribe(ticket)
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
        if to_start:
            log.info(
                "handing %s to worker %s", ", ".join(t.id for t in to_start), printable(worker)
            )
        return PollResponse(
            tasks_to_start=tuple(agent_aware_task(task) for task in to_start),
            poll_interval_in_seconds=self._poll_interval,
            tasks_to_stop=tuple(to_stop),
        )

    async def _task_started(self, _m: object, headers: Mapping[str, str], _r: Request) -> object:
        caller = await self._auth.task(headers)
        await self._scheduler.task_started(caller.task)
        return None

    async def _task_failed(
        self, message: object, headers: Mapping[str, str], _r: Request
    ) -> object:
        assert isinstance(message, TaskFailure)
        caller = await self._auth.task(headers)
        await self._scheduler.task_failed(caller.task, message.message)
        return None

    async def _task_stopped(self, _m: object, headers: Mapping[str, str], _r: Request) -> object:
        caller = await self._auth.task(headers)
        await self._scheduler.task_stopped(caller.task)
        return None

    async def _update_status(
        self, message: object, headers: Mapping[str, str], _r: Request
    ) -> object:
        assert isinstance(message, StatusUpdate)
        worker = await self._auth.worker(headers, session_optional=True)
        # A worker draining itself calls with its session; ``cirrus worker pause``/``resume``
        # (an operator) call with the registration token alone, and that pause outlives
        # restarts of the worker, while a drain ends when the worker registers again.
        drain = bool(headers.get(SESSION_TOKEN_HEADER))
        record = await self._scheduler.set_disabled(worker, message.disabled, until_register=drain)
        if record is None:
            raise TwirpError("not_found", f"worker {worker!r} is not registered")
        return WorkerStatus(disabled=record.disabled)

    async def _query_running_tasks(
        self, _m: object, headers: Mapping[str, str], _r: Request
    ) -> object:
        worker = await self._auth.worker(headers, session_optional=True)
        record = await self._store.get_worker(worker)
        if record is None:
            raise TwirpError("not_found", f"worker {worker!r} is not registered")
        running = await self._scheduler.running_task_ids(worker)
        return RunningTasksStatus(disabled=record.disabled, running_tasks=tuple(running))

    # --- CirrusCIService ------------------------------------------------------------------------

    async def _initial_commands(
        self, _m: object, headers: Mapping[str, str], _r: Request
    ) -> object:
        assignment = (await self._auth.task(headers)).task
        # The one task call that needs the spec reads it here, after authentication.
        # The task and its build's environment in one read (one round trip).
        to_run = await self._store.task_to_run(assignment.id)
        if to_run is None:
            raise TwirpError("not_found", f"task {assignment.id} does not exist")
        task, build_environment = to_run.task, to_run.build_environment
        if self.approval_wait is not None and (wait := await self.approval_wait(task.build_id)):
            raise TwirpError("failed_precondition", f"task {task.id}: {wait}")
        # The build's repository, not the task's environment: a task must not pick the
        # repository whose secrets it gets.
        repository = build_environment.get(REPOSITORY_VARIABLE, "")
        try:
            revealed = reveal_secrets(
                sent_environment(task, build_environment), self._secrets, repository
            )
            granted = await self._clone_tokens.grant(repository, revealed.environment)
        except SecretError as error:
            raise TwirpError("failed_precondition", f"task {task.id}: {error}") from None
        # Added to the answer only: the token is never in the stored spec or build environment.
        return CommandsResponse(
            environment={**revealed.environment, **granted.environment},
            commands=task.spec.commands,
            timeout_in_seconds=task.spec.timeout_seconds,
            secrets_to_mask=tuple(
                dict.fromkeys([*revealed.secrets_to_mask, *granted.secrets_to_mask])
            ),
        )

    async def _report_command_updates(
        self, message: object, headers: Mapping[str, str], _r: Request
    ) -> object:
        assert isinstance(message, CommandUpdates)
        caller = _still_running(await self._auth.task(headers), "ReportCommandUpdates")
        await self._scheduler.command_results(caller.task, message.updates)
        return None

    async def _append_logs(
        self, message: object, headers: Mapping[str, str], _r: Request
    ) -> object:
        assert isinstance(message, LogChunk)
        caller = _still_running(await self._auth.task(headers), "AppendLogs")
        if not message.command_name:
            raise TwirpError("invalid_argument", "commandName must not be empty")
        offset = message.offset
        try:
            held = await self._logs.append(
                caller.task.id, message.command_name, message.data, offset
            )
        except LogChunkTooLarge as error:
            raise TwirpError("invalid_argument", f"AppendLogs: {error}") from None
        if offset is not None:
            return LogsAccepted(bytes_logged=held)  # what the command's log holds now
        # Bytes past the task's log quota count as logged too: sending them again cannot help.
        return LogsAccepted(bytes_logged=len(message.data))

    async def _heartbeat(self, _m: object, headers: Mapping[str, str], _r: Request) -> object:
        await self._auth.task(headers)
        return None

    async def _report_agent_finished(
        self, message: object, headers: Mapping[str, str], _r: Request
    ) -> object:
        assert isinstance(message, AgentFinished)
        caller = _still_running(await self._auth.task(headers), "ReportAgentFinished")
        await self._scheduler.command_results(caller.task, message.command_results)
        return None

    def _blob_call(self, method: str) -> Handler:
        """The handler of a cache or artifact call (``app.controller.blob_calls``)."""

        async def handler(message: object, headers: Mapping[str, str], _r: Request) -> object:
            caller = _still_running(await self._auth.task(headers), method)
            if self._blob_calls is None:
                raise no_blob_store(method)
            return await self._blob_calls.answer(method, caller.task, message)

        return handler
