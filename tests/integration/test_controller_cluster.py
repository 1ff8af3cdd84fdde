"""Real ``cirrus controller run`` processes with two real ``cirrus worker run`` processes.

Parametrised over the database: SQLite (one controller) and PostgreSQL (two controllers on one
database, one worker polling each). Every task records its start and end in a shared file, so
that the tests can check what ran where and when. Every process runs in its own session and is
stopped at the end; a process left in any of those sessions fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration.postgres_server import shared_server, stop_shared_server
from tests.integration.test_controller_cli import (
    CIRRUS,
    Process,
    clean_environment,
    dump_stacks,
    printed_token,
    wait_for,
)

pytestmark = pytest.mark.integration

START_TIMEOUT = 30.0
BUILD_TIMEOUT = 120.0
PROMPT_PICKUP_SECONDS = 3.0
"""A held poll on another controller must get new work well within the 10 s poll interval."""

REGISTRATION_LINE = "registration token"
ADMIN_LINE = "admin token"


def recording_script(seconds: float) -> str:
    """A task script that appends its start and end (task id, worker-side time) to $EVENTS."""
    return (
        'echo "start $CIRRUS_TASK_ID $(date +%s.%N)" >> "$EVENTS"; '
        f"sleep {seconds}; "
        'echo "end $CIRRUS_TASK_ID $(date +%s.%N)" >> "$EVENTS"; '
        'echo "done $CIRRUS_TASK_NAME"'
    )


def example_build(events: Path, seconds: float = 2.0) -> str:
    """The example build: one slot of ``tart-vms`` for each of three recording tasks."""
    tasks = "".join(
        f"task:\n  name: t{index}\n  script: {json.dumps(recording_script(seconds))}\n"
        for index in range(1, 4)
    )
    return (
        f"env:\n  EVENTS: {json.dumps(str(events))}\n"
        "persistent_worker:\n  resources:\n    tart-vms: 1\n" + tasks
    )


@dataclass
class Stack:
    """Controllers on one database, two workers split between them, and the admin token."""

    tmp_path: Path
    database: str
    controllers: list[Process]
    urls: list[str]
    registration_token: str
    admin_token: str
    workers: dict[str, Process] = field(default_factory=dict)
    worker_controller: dict[str, int] = field(default_factory=dict)
    events: Path = Path()

    def api(self, method: str, path: str, controller: int = 0, **kwargs: Any) -> Any:
        """Call the HTTP API of one controller and return the decoded JSON answer."""
        response = httpx.request(
            method,
            self.urls[controller] + path,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        assert response.status_code < 300, response.text
        return response.json()

    def submit(self, config: str, controller: int = 0) -> dict[str, Any]:
        """Submit a build to one controller; return the build as answered."""
        build: dict[str, Any] = self.api(
            "POST", "/api/v1/builds", controller, json={"config": config}
        )
        return build

    def build(self, build_id: str) -> dict[str, Any]:
        """Return a build as the first controller shows it."""
        document: dict[str, Any] = self.api("GET", f"/api/v1/builds/{build_id}")
        return document

    def task(self, task_id: str) -> dict[str, Any]:
        """Return a task as the first controller shows it."""
        document: dict[str, Any] = self.api("GET", f"/api/v1/tasks/{task_id}")
        return document

    def final_build(self, build_id: str) -> dict[str, Any]:
        """Wait until every task of a build is final; return the build."""

        def final() -> dict[str, Any] | None:
            document = self.build(build_id)
            return None if document["status"] == "EXECUTING" else document

        document: dict[str, Any] = wait_for(final, BUILD_TIMEOUT, f"build {build_id} to end")
        return document

    def recorded(self) -> list[tuple[str, str, float]]:
        """Return the (event, task id, time) lines the task scripts wrote so far."""
        if not self.events.exists():
            return []
        lines = [line.split() for line in self.events.read_text().splitlines() if line]
        return [(kind, task_id, float(moment)) for kind, task_id, moment in lines]

    def handed_out(self) -> dict[str, list[str]]:
        """Return, by task id, the workers whose logs say they started it."""
        started: dict[str, list[str]] = {}
        for name, worker in self.workers.items():
            for line in worker.stderr().splitlines():
                if "started task " in line:
                    started.setdefault(line.split("started task ")[1].split()[0], []).append(name)
        return started


def start_controller(
    tmp_path: Path, database: str, listen: str = "127.0.0.1:0"
) -> tuple[Process, str]:
    """Start ``cirrus controller run``; return it and its URL once it listens."""
    process = Process(
        tmp_path,
        "controller-" + uuid.uuid4().hex[:6],
        ["controller", "run", "--listen", listen, "--database", database],
    )

    try:
        url = _listening_url(process)
    except BaseException:
        process.kill_session()
        raise
    return process, url


def start_worker(stack: Stack, controller: int, *extra: str) -> str:
    """Start a worker polling one controller (none isolation, two ``tart-vms``)."""
    name = f"w{len(stack.workers) + 1}-" + uuid.uuid4().hex[:6]
    stack.workers[name] = Process(
        stack.tmp_path,
        name,
        [
            "worker",
            "run",
            "--name",
            name,
            "--token",
            stack.registration_token,
            "--rpc-endpoint",
            stack.urls[controller],
            "--resources",
            "tart-vms=2",
            *extra,
        ],
    )
    stack.worker_controller[name] = controller
    return name


def session_members(session: int) -> list[psutil.Process]:
    """Return the live (not zombie) processes of a session."""
    members = []
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def stop_together(processes: dict[str, Process]) -> list[str]:
    """SIGTERM every process at once, then wait for each; return the complaints of all."""
    for process in processes.values():
        if process.alive():
            process.process.send_signal(signal.SIGTERM)
    return [complaint for what, process in processes.items() for complaint in reap(process, what)]


def reap(process: Process, what: str) -> list[str]:
    """Wait for a signalled process; return complaints (bad exit, leftovers in its session)."""
    complaints = []
    try:
        code = process.process.wait(timeout=60)
        if code != 0:
            complaints.append(f"{what} exited with {code}: {process.stderr()[-2000:]}")
    except subprocess.TimeoutExpired:
        dump_stacks(process)
        tail = "\n".join(process.stderr().splitlines()[-60:])
        complaints.append(f"{what} still ran 60 s after SIGTERM; its stderr ends:\n{tail}")
    left = session_members(process.process.pid)
    if left:
        complaints.append(f"{what} left {[p.pid for p in left]} running")
    process.kill_session()
    return complaints


@pytest.fixture(scope="module", autouse=True)
def postgres_cluster() -> Iterator[None]:
    """Stop the private PostgreSQL cluster, if a test started it, after this module."""
    yield
    stop_shared_server()


@pytest.fixture(params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """One controller on SQLite, or two on one PostgreSQL database; a worker on each end."""
    backend = str(request.param)
    if backend == "sqlite":
        database, count = f"sqlite:///{tmp_path / 'controller.db'}", 1
    else:
        database, count = shared_server().create_database(), 2
    started: list[tuple[Process, str]] = []
    workers: dict[str, Process] = {}
    stack: Stack | None = None
    try:
        # Started together on a fresh database: they must agree on the generated tokens.
        processes = [
            Process(
                tmp_path,
                f"controller-{index}",
                ["controller", "run", "--listen", "127.0.0.1:0", "--database", database],
            )
            for index in range(count)
        ]
        for process in processes:
            try:
                started.append((process, _listening_url(process)))
            except BaseException:
                for other in processes:
                    other.kill_session()
                raise
        output = "".join(process.stdout() for process, _ in started)
        assert output.count(REGISTRATION_LINE) == 1, output
        assert output.count(ADMIN_LINE) == 1, output
        stack = Stack(
            tmp_path=tmp_path,
            database=database,
            controllers=[process for process, _ in started],
            urls=[url for _, url in started],
            registration_token=printed_token(output, REGISTRATION_LINE),
            admin_token=printed_token(output, ADMIN_LINE),
            workers=workers,
            events=tmp_path / "events",
        )
        for index in range(2):
            start_worker(stack, index % count, "--labels", f"side={index}")
        for index in range(count):  # every controller serves the generated token
            wait_for(
                lambda i=index: len(stack.api("GET", "/api/v1/workers", i)) == 2,  # type: ignore[misc]
                START_TIMEOUT,
                "both workers to register",
            )
        yield stack
    finally:
        # Workers first (each drains and tells its controller), then the controllers.
        complaints = stop_together({f"worker {name}": worker for name, worker in workers.items()})
        controllers = stack.controllers if stack is not None else [p for p, _ in started]
        complaints += stop_together(
            {f"controller {index}": controller for index, controller in enumerate(controllers)}
        )
        assert not complaints, "\n".join(complaints)


def _listening_url(process: Process) -> str:
    def listening() -> str | None:
        if not process.alive():
            raise AssertionError(f"controller exited: {process.stderr()}")
        for line in process.stdout().splitlines():
            if line.startswith("controller listening on "):
                return line.split()[-1]
        return None

    url: str = wait_for(listening, START_TIMEOUT, "the controller to listen")
    return url


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Return the most intervals that were open at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def test_the_example_build_completes_with_two_tasks_at_most_per_worker(stack: Stack) -> None:
    build = stack.submit(example_build(stack.events))
    final = stack.final_build(build["id"])

    assert final["status"] == "COMPLETED", final
    assert [task["status"] for task in final["tasks"]] == ["COMPLETED"] * 3
    events = stack.recorded()
    starts = {task_id: moment for kind, task_id, moment in events if kind == "start"}
    ends = {task_id: moment for kind, task_id, moment in events if kind == "end"}
    task_ids = [task["id"] for task in final["tasks"]]
    assert sorted(kind for kind, _, _ in events) == ["end"] * 3 + ["start"] * 3
    assert set(starts) == set(ends) == set(task_ids)
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for task_id in task_ids:
        record = stack.task(task_id)
        assert record["worker"] in stack.workers
        by_worker.setdefault(record["worker"], []).append((starts[task_id], ends[task_id]))
    assert all(max_overlap(spans) <= 2 for spans in by_worker.values()), by_worker
    handed = stack.handed_out()
    assert {task_id: len(names) for task_id, names in handed.items()} == dict.fromkeys(task_ids, 1)
    for task_id in task_ids:
        log = httpx.get(
            f"{stack.urls[-1]}/api/v1/tasks/{task_id}/logs/main",
            headers={"Authorization": f"Bearer {stack.admin_token}"},
        )
        assert log.text.startswith("done t"), log.text


def test_work_submitted_to_one_controller_wakes_a_poll_held_by_another(stack: Stack) -> None:
    # Only the last worker (on the last controller) matches; submit to the first controller.
    side = str(len(stack.workers) - 1)
    config = (
        f"env:\n  EVENTS: {json.dumps(str(stack.events))}\n"
        f"task:\n  persistent_worker:\n    labels:\n      side: '{side}'\n"
        f"  script: {json.dumps(recording_script(0))}\n"
    )
    submitted = time.monotonic()
    build = stack.submit(config, controller=0)
    task_id = build["tasks"][0]["id"]
    wait_for(
        lambda: stack.task(task_id)["status"] != "SCHEDULED",
        PROMPT_PICKUP_SECONDS,
        "a worker to take the task",
    )
    picked_up = time.monotonic() - submitted
    assert picked_up < PROMPT_PICKUP_SECONDS
    assert stack.final_build(build["id"])["status"] == "COMPLETED"
    worker = stack.task(task_id)["worker"]
    assert stack.worker_controller[worker] == len(stack.controllers) - 1


def test_a_task_no_worker_matches_stays_scheduled_with_a_reason(stack: Stack) -> None:
    config = (
        f"env:\n  EVENTS: {json.dumps(str(stack.events))}\n"
        "unmatched_task:\n  persistent_worker:\n    labels:\n      gpu: h100\n"
        "  script: echo never\n"
        f"matched_task:\n  script: {json.dumps(recording_script(0))}\n"
    )
    build = stack.submit(config)
    unmatched, matched = (task["id"] for task in build["tasks"])
    wait_for(
        lambda: stack.task(matched)["status"] == "COMPLETED",
        BUILD_TIMEOUT,
        "the matching task to complete",
    )
    # Both workers polled since (one of them ran the other task): still nobody takes it.
    for controller in range(len(stack.controllers)):
        task = stack.api("GET", f"/api/v1/tasks/{unmatched}", controller)
        assert (task["status"], task["worker"]) == ("SCHEDULED", None)
        assert "gpu" in task["pendingReason"], task["pendingReason"]
    stack.api("POST", f"/api/v1/tasks/{unmatched}/cancel")
    assert stack.final_build(build["id"])["status"] == "ABORTED"


def test_task_cancel_aborts_a_running_task(stack: Stack) -> None:
    config = (
        f"env:\n  EVENTS: {json.dumps(str(stack.events))}\n"
        f"task:\n  script: {json.dumps(recording_script(120))}\n"
    )
    build = stack.submit(config)
    task_id = build["tasks"][0]["id"]
    wait_for(
        lambda: any(kind == "start" for kind, _, _ in stack.recorded()),
        BUILD_TIMEOUT,
        "the task to start",
    )
    env = clean_environment(stack.tmp_path)
    env["CIRRUS_TOKEN"] = stack.admin_token
    cancelled = subprocess.run(
        [str(CIRRUS), "task", "cancel", task_id, "--controller", stack.urls[-1], "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["id"] == task_id
    final = stack.final_build(build["id"])
    assert final["status"] == "ABORTED"
    assert stack.task(task_id)["status"] == "ABORTED"
    assert [kind for kind, _, _ in stack.recorded()] == ["start"]


def test_a_controller_killed_mid_build_and_restarted_finishes_the_build(stack: Stack) -> None:
    build = stack.submit(example_build(stack.events, seconds=4))
    task_ids = [task["id"] for task in build["tasks"]]
    wait_for(
        lambda: any(kind == "start" for kind, _, _ in stack.recorded()),
        BUILD_TIMEOUT,
        "a task to start",
    )
    victim = stack.controllers[0]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=30)
    victim.kill_session()
    port = stack.urls[0].rsplit(":", 1)[1]
    restarted, url = start_controller(stack.tmp_path, stack.database, f"127.0.0.1:{port}")
    stack.controllers[0] = restarted
    assert url == stack.urls[0]
    assert "token" not in restarted.stdout()  # the stored tokens are served again

    final = stack.final_build(build["id"])
    statuses = [task["status"] for task in final["tasks"]]
    assert statuses == ["COMPLETED"] * 3, [stack.task(task_id) for task_id in task_ids]
    assert final["status"] == "COMPLETED"
    ends = [task_id for kind, task_id, _ in stack.recorded() if kind == "end"]
    assert sorted(ends) == sorted(task_ids)
    for task_id in task_ids:
        log = httpx.get(
            f"{url}/api/v1/tasks/{task_id}/logs/main",
            headers={"Authorization": f"Bearer {stack.admin_token}"},
        )
        assert log.text.startswith("done t"), log.text


def test_a_log_line_reaches_the_live_task_page_of_the_other_controller(stack: Stack) -> None:
    # The task runs on the worker of controller 0; the page streams from the last controller
    # (another process on the same PostgreSQL, or the same one on SQLite).
    barrier = stack.tmp_path / "go-on"
    script = f'echo first-line; while [ ! -e "{barrier}" ]; do sleep 0.1; done; echo second-line'
    config = (
        'persistent_worker:\n  labels:\n    side: "0"\n'
        f"task:\n  name: live\n  main_script: {json.dumps(script)}\n"
    )
    task_id = stack.submit(config)["tasks"][0]["id"]

    def first_line_logged() -> int | None:
        response = httpx.get(
            f"{stack.urls[0]}/api/v1/tasks/{task_id}/logs/main",
            headers={"Authorization": f"Bearer {stack.admin_token}"},
            timeout=30,
        )
        return len(response.content) if b"first-line" in response.content else None

    offset = wait_for(first_line_logged, BUILD_TIMEOUT, "the task's first line")
    with httpx.Client(base_url=stack.urls[-1], timeout=30) as page:
        page.post("/login", data={"token": stack.admin_token, "next": "/"})
        assert "cirrus_session" in page.cookies
        live = f"/live/tasks/{task_id}?log=main&at={offset}"
        with page.stream("GET", live) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            barrier.touch()
            deadline = time.monotonic() + BUILD_TIMEOUT
            received: list[str] = []
            for line in events.iter_lines():
                received.append(line)
                if "second-line" in line or time.monotonic() > deadline:
                    break
    assert any(line.startswith("data: ") and "second-line" in line for line in received), received
    assert not any("first-line" in line for line in received)  # only what came after `at`
    assert stack.final_build(stack.task(task_id)["buildId"])["status"] == "COMPLETED"
