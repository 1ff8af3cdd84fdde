"""A real ``cirrus controller run`` with 300 simulated idle workers and one real worker.

The idle workers are asyncio clients in the test process speaking the Twirp JSON of
``spec/PROTOCOL.md`` (``Register``, then ``Poll`` in a loop) with labels no task asks for. A
submitted task must wake only the poll that can take it, not every held one: the controller's
``/metrics`` counts each held poll it wakes (``org_cirruslabs_controller_poll_wakeups``), and the
idle clients count the polls answered before their interval.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_controller_cli import (
    Process,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

IDLE_WORKERS = 300
TASKS = 10
HANDFUL = 5
"""Wakes per task allowed: the taker's twice (queued, then its task stopped), and polls
whose look was under way (woken to look once more)."""
WORKERS = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService"
TASK = "task:\n  persistent_worker:\n    labels:\n      pool: real\n  script: 'true'\n"
WAKEUPS = re.compile(r"^org_cirruslabs_controller_poll_wakeups(?:_total)?(?:\{[^}]*\})? (\S+)$")


class IdleFleet:
    """Idle workers holding polls; counts the polls answered early with nothing to do."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.held = 0
        self.early = 0
        self.offered = 0
        self.errors: list[str] = []

    async def run(self, count: int) -> None:
        """Register ``count`` workers and keep each polling until cancelled."""
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=60) as http:
            gate = asyncio.Semaphore(30)
            await asyncio.gather(*(self._worker(http, gate) for _ in range(count)))

    async def _worker(self, http: httpx.AsyncClient, gate: asyncio.Semaphore) -> None:
        name = "idle-" + uuid.uuid4().hex[:10]
        info = {"labels": {"name": name, "os": "linux", "arch": "amd64", "pool": "idle"}}
        async with gate:
            registered = await http.post(
                f"{WORKERS}/Register",
                json={"registrationToken": self.token, "workerInfo": info},
                headers={"Content-Type": "application/json"},
            )
        if registered.status_code != 200:
            self.errors.append(registered.text)
            return
        headers = {
            "Content-Type": "application/json",
            "registration-token": self.token,
            "session-token": registered.json()["sessionToken"],
            "worker-name": name,
        }
        while True:
            began = time.monotonic()
            self.held += 1
            try:
                answer = await http.post(
                    f"{WORKERS}/Poll", json={"workerInfo": info}, headers=headers
                )
            finally:
                self.held -= 1
            if answer.status_code != 200:
                self.errors.append(answer.text)
                return
            body = answer.json()
            if body.get("tasksToStart"):
                self.offered += 1
            elif time.monotonic() - began < 0.9 * float(body["pollIntervalInSeconds"]):
                self.early += 1


def poll_wakeups(url: str) -> float:
    """The controller's count of held polls woken (0 before the first)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(float(m.group(1)) for m in map(WAKEUPS.match, text.splitlines()) if m)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A controller on SQLite and one real worker labelled ``pool: real``."""
    process, url = start_controller(tmp_path, tmp_path / "controller.db")
    registration = printed_token(process.stdout(), "registration token")
    admin = printed_token(process.stdout(), "admin token")
    worker_file = tmp_path / "worker.yml"
    worker_file.write_text(
        json.dumps(
            {
                "name": "real-" + uuid.uuid4().hex[:8],
                "token": registration,
                "rpc": {"endpoint": url},
                "labels": {"pool": "real"},
            }
        )
    )
    worker = Process(tmp_path, "worker", ["worker", "run", "-f", str(worker_file)])
    try:
        yield url, registration, admin
    finally:
        codes = (worker.terminate(), process.terminate())
        assert codes == (0, 0), worker.stderr() + process.stderr()


def run_to_end(api: httpx.Client) -> None:
    """Submit a one-task build for the real worker and wait until it completed."""
    response = api.post("/api/v1/builds", json={"config": TASK})
    assert response.status_code == 201, response.text
    build_id = response.json()["id"]

    def ended() -> str | None:
        status = str(api.get(f"/api/v1/builds/{build_id}").json()["status"])
        return None if status == "EXECUTING" else status

    assert wait_for(ended, 60, f"build {build_id} to end") == "COMPLETED"


async def test_each_task_wakes_at_most_a_handful_of_300_held_idle_polls(
    controller: tuple[str, str, str],
) -> None:
    url, registration, admin = controller
    fleet = IdleFleet(url, registration)
    polling = asyncio.create_task(fleet.run(IDLE_WORKERS))
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30
        ) as api:
            deadline = time.monotonic() + 120
            while fleet.held < IDLE_WORKERS and not fleet.errors:
                assert time.monotonic() < deadline, f"{fleet.held} polls held"
                await asyncio.sleep(0.1)
            await asyncio.to_thread(run_to_end, api)  # warm-up: the real worker is polling
            before = await asyncio.to_thread(poll_wakeups, url)
            early_before = fleet.early
            for _ in range(TASKS):
                await asyncio.to_thread(run_to_end, api)
            woken = await asyncio.to_thread(poll_wakeups, url) - before
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
    assert fleet.errors == []
    assert fleet.offered == 0
    assert woken <= HANDFUL * TASKS, f"{woken} polls woken for {TASKS} tasks"
    assert fleet.early - early_before <= HANDFUL * TASKS
