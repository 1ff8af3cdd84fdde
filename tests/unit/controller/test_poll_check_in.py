"""A ``Poll`` checks in with one store call (``check_in_worker``): authentication, the record of
the poll and the reads of an idle look together; what it read before subscribing is looked at
again when anything in the process changed meanwhile (``PollWaiters.changes``)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.types import Message

from adapters.twirp.codec import TwirpJsonCodec, method_path
from app.controller.auth import (
    REGISTRATION_TOKEN_HEADER,
    SESSION_TOKEN_HEADER,
    WORKER_NAME_HEADER,
    TokenHash,
    WorkerAuthenticator,
)
from app.controller.long_poll import PollWaiters
from app.controller.scheduler_service import SchedulerService
from app.controller.task_logs import TaskLogWriter
from app.controller.twirp_services import TwirpServices
from domain.store import WorkerCheckIn
from tests.unit.controller.conftest import OFFLINE_AFTER
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.fake_tasks import FakeClock
from tests.unit.controller.steps import assignment, submit

REGISTRATION = "registration secret"


class CheckInStore(FakeStore):
    """The fake store, noting each store method a caller takes (one round trip on a SQL store)
    and running ``after_check_in`` between a check-in's read and its answer."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.called: list[str] = []
        self.after_check_in: Callable[[], Awaitable[None]] | None = None

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value):
            super().__getattribute__("called").append(name)
        return value

    async def check_in_worker(
        self,
        name: str,
        session_token_hash: str,
        resources_in_use: Mapping[str, float],
        running_task_ids: Sequence[str],
        *,
        queue_limit: int,
    ) -> WorkerCheckIn | None:
        """Check in as the fake does, then run ``after_check_in`` (once)."""
        checked_in = await super().check_in_worker(
            name, session_token_hash, resources_in_use, running_task_ids, queue_limit=queue_limit
        )
        hook, self.after_check_in = self.after_check_in, None
        if hook is not None:
            await hook()
        return checked_in


class Controller:
    """The Twirp services, the scheduler and the store of one controller process."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = CheckInStore(self.clock)
        waiters = PollWaiters()
        self.scheduler = SchedulerService(
            self.store, self.clock, waiters, offline_after_seconds=OFFLINE_AFTER
        )
        self.services = TwirpServices(
            self.store,
            self.scheduler,
            waiters,
            WorkerAuthenticator(self.store, TokenHash.of(REGISTRATION)),
            self.clock,
            codec=TwirpJsonCodec(),
            logs=TaskLogWriter(self.store),
            poll_interval_seconds=1,
        )

    async def call(
        self, method: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> tuple[int, Any]:
        """POST one ``CirrusWorkersService`` call to the Twirp endpoint."""
        messages = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]

        async def receive() -> Message:
            if messages:
                return messages.pop(0)
            await asyncio.Event().wait()  # the worker stays connected for the whole poll
            raise AssertionError("unreachable")

        sent = {"content-type": "application/json", **headers}
        scope = {
            "type": "http",
            "method": "POST",
            "path": method_path("CirrusWorkersService", method),
            "query_string": b"",
            "headers": [(key.encode(), value.encode()) for key, value in sent.items()],
        }
        response = await self.services.handle(Request(scope, receive))
        return response.status_code, json.loads(bytes(response.body))

    async def register(self) -> dict[str, str]:
        """Register worker ``w1``; return the headers of its calls with the new session."""
        body = {
            "registrationToken": REGISTRATION,
            "workerInfo": {"labels": {"name": "w1", "os": "linux"}, "resourcesTotal": {"cpu": 4}},
        }
        status, answer = await self.call("Register", body, {})
        assert status == 200
        return {
            REGISTRATION_TOKEN_HEADER: REGISTRATION,
            WORKER_NAME_HEADER: "w1",
            SESSION_TOKEN_HEADER: str(answer["sessionToken"]),
        }

    async def poll(self, headers: Mapping[str, str], running: Sequence[str] = ()) -> Any:
        """Poll as ``w1``, reporting ``running``; return the answer (asserting a success)."""
        body = {"workerInfo": {"labels": {"name": "w1"}}, "runningTasks": list(running)}
        status, answer = await self.call("Poll", body, headers)
        assert status == 200, answer
        return answer


async def test_an_idle_poll_checks_in_with_one_store_call() -> None:
    controller = Controller()
    headers = await controller.register()
    controller.clock.advance(5)
    controller.store.called.clear()
    answer = await controller.poll(headers)
    assert controller.store.called == ["check_in_worker"]
    assert not answer.get("tasksToStart")
    worker = await controller.store.get_worker("w1")
    assert worker is not None
    assert worker.last_seen == controller.clock.now()


async def test_a_poll_with_the_session_of_an_earlier_registration_is_refused_and_not_recorded() -> (
    None
):
    controller = Controller()
    earlier = await controller.register()
    await controller.register()
    before = await controller.store.get_worker("w1")
    controller.clock.advance(5)
    status, answer = await controller.call("Poll", {"runningTasks": ["9"]}, earlier)
    assert (status, answer["code"]) == (401, "unauthenticated")
    assert "register again" in answer["msg"]
    assert await controller.store.get_worker("w1") == before


def queueing(controller: Controller, queued: list[str]) -> Callable[[], Awaitable[None]]:
    """A step that submits a one-task build and notes its task's id in ``queued``."""

    async def queue_a_task() -> None:
        build = await submit(controller.store)
        queued.append(build.tasks[0].id)
        await controller.scheduler.build_submitted(build.id)

    return queue_a_task


async def test_a_task_queued_between_the_check_in_and_the_look_is_handed_out_at_once() -> None:
    controller = Controller()
    headers = await controller.register()
    queued: list[str] = []
    controller.store.after_check_in = queueing(controller, queued)
    answer = await controller.poll(headers)
    assert [task["taskId"] for task in answer["tasksToStart"]] == queued


async def test_a_cancel_between_the_check_in_and_the_look_stops_the_task_at_once() -> None:
    controller = Controller()
    headers = await controller.register()
    await submit(controller.store)
    [task] = await controller.scheduler.claim_for("w1")

    async def cancel() -> None:
        await controller.scheduler.cancel(task.id)

    controller.store.after_check_in = cancel
    answer = await controller.poll(headers, running=[task.id])
    assert answer["tasksToStop"] == [task.id]


async def test_a_poll_still_listing_a_task_the_worker_stopped_checks_in_with_one_store_call() -> (
    None
):
    controller = Controller()
    headers = await controller.register()
    await submit(controller.store)
    [task] = await controller.scheduler.claim_for("w1")
    await controller.scheduler.task_stopped(assignment(task))
    controller.store.called.clear()
    answer = await controller.poll(headers, running=[task.id])
    assert controller.store.called == ["check_in_worker"]
    assert not answer.get("tasksToStop")


async def test_a_poll_listing_a_task_that_is_not_its_own_is_told_to_stop_it() -> None:
    controller = Controller()
    headers = await controller.register()
    build = await submit(controller.store)
    queued = build.tasks[0].id
    await controller.scheduler.build_submitted(build.id)
    controller.store.called.clear()
    answer = await controller.poll(headers, running=["999999", queued])
    assert answer["tasksToStop"] == ["999999", queued]
    assert "get_task" not in controller.store.called


async def test_a_look_after_the_check_in_went_stale_reads_no_reported_task_again() -> None:
    controller = Controller()
    headers = await controller.register()
    await submit(controller.store)
    [task] = await controller.scheduler.claim_for("w1")
    await controller.scheduler.task_stopped(assignment(task))
    queued: list[str] = []
    controller.store.after_check_in = queueing(controller, queued)
    controller.store.called.clear()
    answer = await controller.poll(headers, running=[task.id])
    assert [started["taskId"] for started in answer["tasksToStart"]] == queued
    assert not answer.get("tasksToStop")
    assert "held_and_reported" in controller.store.called  # the look read anew
    assert "get_task" not in controller.store.called
