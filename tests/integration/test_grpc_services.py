"""Black-box tests of the controller's gRPC services (``cirrus controller run --grpc-listen``)
over real HTTP/2 on 127.0.0.1, driven by clients generated from ``proto/`` that follow the
call sequences of the original Go worker and agent (``grpc_go_client``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from adapters.wire import cirrus_ci_service_pb2 as pb
from adapters.wire.cirrus_ci_service_pb2_grpc import CirrusCIServiceStub
from tests.integration.grpc_go_client import GoAgent, GoWorker
from tests.integration.test_controller_cli import (
    START_TIMEOUT,
    Process,
    cli,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

ONE_TASK = """\
hello_task:
  greet_script:
    - echo "first line"
    - echo "second line"
"""

SLOW_TASK = """\
slow_task:
  script: sleep 600
"""


@dataclass
class GrpcController:
    """A controller serving gRPC, its tokens and an HTTP API client."""

    process: Process
    url: str
    grpc_target: str
    registration_token: str
    api: httpx.Client

    def submit(self, config: str) -> dict[str, Any]:
        """Submit a build through the JSON API; return its answer."""
        response = self.api.post("/api/v1/builds", json={"config": config})
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def task(self, task_id: str) -> dict[str, Any]:
        """``GET /api/v1/tasks/{id}``."""
        answer: dict[str, Any] = self.api.get(f"/api/v1/tasks/{task_id}").json()
        return answer

    def worker(self, label: str) -> GoWorker:
        """A Go-shaped worker with a fresh name."""
        name = f"{label}-{uuid.uuid4().hex[:8]}"
        return GoWorker(self.grpc_target, self.registration_token, name)


def grpc_address(process: Process) -> str:
    """The ``HOST:PORT`` the controller printed for its gRPC server."""

    def printed() -> str | None:
        for line in process.stdout().splitlines():
            if line.startswith("gRPC listening on "):
                return line.split()[-1]
        return None

    found: str = wait_for(printed, START_TIMEOUT, "the gRPC listening line")
    return found


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcController]:
    """A controller with ``--grpc-listen 127.0.0.1:0`` and a tmp SQLite database."""
    tmp_path = tmp_path_factory.mktemp("grpc")
    process, url = start_controller(
        tmp_path, tmp_path / "controller.db", "--grpc-listen", "127.0.0.1:0"
    )
    output = process.stdout()
    admin = printed_token(output, "admin token")
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    try:
        yield GrpcController(
            process, url, grpc_address(process), printed_token(output, "registration token"), api
        )
    finally:
        api.close()
        assert process.terminate() == 0, process.stderr()


def wait_for_status(controller: GrpcController, task_id: str, status: str) -> dict[str, Any]:
    """Poll the JSON API until the task has ``status``."""
    return dict(
        wait_for(
            lambda: (task := controller.task(task_id))["status"] == status and task,
            30,
            f"task {task_id} to be {status}",
        )
    )


def test_a_go_worker_and_its_agent_run_a_task_to_completed_with_streamed_logs(
    controller: GrpcController,
) -> None:
    build = controller.submit(ONE_TASK)
    worker = controller.worker("life")
    try:
        assert worker.register()
        (task,) = worker.poll_until_tasks(30)
        assert task.task_id == build["tasks"][0]["id"]
        assert task.client_secret
        assert task.server_secret
        worker.task_started(task)
        assert controller.task(task.task_id)["status"] == "EXECUTING"
        agent = worker.agent(task)
        commands = agent.initial_commands()  # checks the server token as the Go agent does
        assert [command.name for command in commands.commands] == ["clone", "greet"]
        # No source: the clone step the Go agent gets only says so (its own clone would fail).
        clone = commands.commands[0]
        assert clone.WhichOneof("instruction") == "script_instruction"
        assert "no source to clone" in clone.script_instruction.scripts[0]
        assert commands.environment["CIRRUS_TASK_ID"] == task.task_id
        chunks = [b"first line\n", b"second ", b"line\n", b"\xe2\x9c\x93 done\n"]
        agent.report_updates([pb.CommandResult(name="greet", status=pb.EXECUTING)])
        assert agent.stream_logs("greet", chunks[:3]) == sum(map(len, chunks[:3]))
        # The agent's re-send of the whole log: only the part not yet held is appended.
        assert agent.stream_logs("greet", [b"".join(chunks)], save=True) == sum(map(len, chunks))
        agent.heartbeat()
        result = pb.CommandResult(name="greet", status=pb.COMPLETED, duration_in_nanos=5_000)
        agent.report_updates([result])
        cloned = pb.CommandResult(name="clone", status=pb.COMPLETED, duration_in_nanos=1_000)
        agent.report_finished([cloned, result])
        agent.close()
        worker.task_stopped(task)
        finished = wait_for_status(controller, task.task_id, "COMPLETED")
        assert [c["status"] for c in finished["commands"]] == ["COMPLETED", "COMPLETED"]
        log = controller.api.get(f"/api/v1/tasks/{task.task_id}/logs/greet")
        assert log.content == b"".join(chunks)
        assert worker.poll(()).tasks_to_start == []
    finally:
        worker.close()


def test_a_task_cancelled_through_the_api_is_in_the_next_polls_tasks_to_stop(
    controller: GrpcController,
) -> None:
    controller.submit(SLOW_TASK)
    worker = controller.worker("cancel")
    try:
        worker.register()
        (task,) = worker.poll_until_tasks(30)
        worker.task_started(task)
        cancelled = controller.api.post(f"/api/v1/tasks/{task.task_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        deadline = time.monotonic() + 30
        to_stop: list[str] = []
        while not to_stop and time.monotonic() < deadline:
            to_stop = list(worker.poll((task.task_id,)).tasks_to_stop)
        assert to_stop == [task.task_id]
        worker.task_stopped(task)  # what runTask sends once the cancelled agent is gone
        wait_for_status(controller, task.task_id, "ABORTED")
    finally:
        worker.close()


def code_of(call: Any) -> grpc.StatusCode:
    """Make ``call``; return the status code it failed with."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    code: grpc.StatusCode = raised.value.code()
    return code


def test_refused_calls_answer_the_grpc_codes_of_their_twirp_codes(
    controller: GrpcController,
) -> None:
    worker = controller.worker("codes")
    impostor = GoWorker(controller.grpc_target, "not-the-token", worker.name)
    try:
        assert code_of(impostor.register) == grpc.StatusCode.UNAUTHENTICATED
        # Poll without a session: the Go worker's call before it registered.
        assert code_of(worker.poll) == grpc.StatusCode.UNAUTHENTICATED
        # `cirrus worker pause` of a worker that never registered: NOT_FOUND, "not yet".
        status = pb.UpdateStatusRequest(disabled=True)
        pause = worker.stub.UpdateStatus
        assert code_of(lambda: pause(status, metadata=worker.metadata())) == (
            grpc.StatusCode.NOT_FOUND
        )
        wrong_secret = GoAgent(controller.grpc_target, "1", "wrong-secret", "x")
        assert code_of(wrong_secret.heartbeat) == grpc.StatusCode.PERMISSION_DENIED
        wrong_secret.close()
        stub = CirrusCIServiceStub(worker.channel)
        delete = pb.DeleteCacheRequest()
        assert code_of(lambda: stub.DeleteCache(delete, timeout=10)) == (
            grpc.StatusCode.UNIMPLEMENTED
        )
    finally:
        worker.close()
        impostor.close()


def test_the_controller_file_key_grpc_listen_starts_the_grpc_server(tmp_path: Path) -> None:
    config = tmp_path / "controller.yml"
    config.write_text("grpc:\n  listen: 127.0.0.1:0\n")
    process, _url = start_controller(tmp_path, tmp_path / "c.db", "-f", str(config))
    try:
        target = grpc_address(process)
        worker = GoWorker(target, printed_token(process.stdout(), "registration token"), "file")
        assert worker.register()
        worker.close()
    finally:
        assert process.terminate() == 0, process.stderr()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--grpc-listen", "127.0.0.1:notaport"], "--grpc-listen"),
        (["-f", "grpc.yml"], "grpc.color: unknown key (known: listen)"),
    ],
)
def test_a_wrong_grpc_setting_exits_2_naming_it(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "grpc.yml").write_text("grpc:\n  color: blue\n")
    done = cli(
        tmp_path,
        "controller",
        "run",
        "--listen",
        "127.0.0.1:0",
        "--database",
        f"sqlite:///{tmp_path / 'c.db'}",
        *args,
        "--check",
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
