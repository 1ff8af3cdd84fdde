"""A real ``cirrus controller run`` and a real ``cirrus worker run`` for the fault suite.

The controller listens on a fixed port, chosen free when the stack starts, so that it can be
stopped, frozen or killed and started again where the worker keeps looking for it. The worker
runs on the host (no isolation). The task of ``streaming_build`` prints numbered lines steadily
from two commands, and ``stream_problems`` says whether a command's log holds each of them
exactly once, in order, up to the command's closing line.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.postgres_server import PostgresServer, find_program
from tests.integration.test_controller_cli import Process, printed_token, wait_for
from tests.integration.test_controller_cluster import start_controller

PORT_ATTEMPTS = 3
"""A port found free may be taken before the controller binds it: try another one."""

RESTART_TIMEOUT = 30.0
"""How long a restarted controller may wait for its old port to be free again."""

LINE_EVERY = 0.1
"""Seconds between two numbered lines of the streaming task."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stream_script(prefix: str, seconds: float) -> str:
    """A script printing ``PREFIX N`` every ``LINE_EVERY`` s for ``seconds``, then
    ``PREFIX end N`` (N: how many it printed), so that a lost tail shows too."""
    return (
        f"end=$(( $(date +%s) + {round(seconds)} )); i=0; "
        'while [ "$(date +%s)" -lt "$end" ]; do '
        f'i=$((i + 1)); echo "{prefix} $i"; sleep {LINE_EVERY}; done; '
        f'echo "{prefix} end $i"'
    )


def streaming_build(during_seconds: float, across_seconds: float) -> str:
    """A build of two tasks run side by side: ``during`` streams for ``during_seconds`` (so that
    it ends in the fault), ``across`` for ``across_seconds`` (past the fault). Two tasks, not two
    commands: a command starts only once the previous one's log is delivered."""
    # One slot each of the two the worker offers: a resource-less task would run alone.
    tasks = "".join(
        f"{name}_task:\n  {name}_script: {json.dumps(stream_script(name, seconds))}\n"
        for name, seconds in (("during", during_seconds), ("across", across_seconds))
    )
    return "persistent_worker:\n  resources:\n    slots: 1\n" + tasks


def _runs(numbers: list[int]) -> str:
    """``1-25 21-30 36-150``: the numbers as ascending runs, as a reader would describe them."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return " ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def stream_problems(log: str, prefix: str) -> str | None:
    """Return what is wrong with a command's log of ``stream_script(prefix, ...)``, or None."""
    lines = log.splitlines()
    if not lines or not lines[-1].startswith(f"{prefix} end "):
        return f"{prefix}: no closing line; the log ends with {lines[-3:]!r}"
    printed = int(lines[-1].rsplit(" ", 1)[1])
    numbers: list[int] = []
    for line in lines[:-1]:
        head, _, number = line.rpartition(" ")
        if head != prefix or not number.isdecimal():
            return f"{prefix}: unexpected line {line!r}"
        numbers.append(int(number))
    if numbers != list(range(1, printed + 1)):
        return f"{prefix}: printed 1-{printed}, the log holds {_runs(numbers)}"
    return None


@dataclass
class FaultStack:
    """A controller on a fixed port, its database, and one worker polling it."""

    tmp_path: Path
    database: str
    port: int
    controller: Process
    first_output: str
    worker: Process
    frozen: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The controller's URL, the same across restarts."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        """The admin token the controller generated on its first start."""
        return printed_token(self.first_output, "admin token")

    @classmethod
    def start(cls, tmp_path: Path, database: str) -> FaultStack:
        """Start a controller on a free port (another one if it is taken meanwhile), then a
        worker polling it."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            try:
                controller, url = start_controller(tmp_path, database, f"127.0.0.1:{port}")
            except AssertionError:
                if attempt == PORT_ATTEMPTS:
                    raise
                continue
            output = controller.stdout()
            name = "fault-" + uuid.uuid4().hex[:6]
            token = printed_token(output, "registration token")
            worker = Process(
                tmp_path,
                name,
                ["worker", "run", "--name", name, "--token", token, "--rpc-endpoint", url,
                 "--resources", "slots=2"],
            )  # fmt: skip
            return cls(tmp_path, database, port, controller, output, worker)
        raise AssertionError("unreachable")

    def restart_controller(self) -> None:
        """Start the controller again on the same database and port."""
        deadline = time.monotonic() + RESTART_TIMEOUT
        while True:
            try:
                self.controller, _ = start_controller(
                    self.tmp_path, self.database, f"127.0.0.1:{self.port}"
                )
                return
            except AssertionError:
                # The old port may be held for a moment by another test's connection.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def freeze(self, process: Process) -> None:
        """SIGSTOP a process of the stack (its children, such as a task's script, run on)."""
        process.process.send_signal(signal.SIGSTOP)
        self.frozen.append(process)

    def thaw(self) -> None:
        """SIGCONT every frozen process."""
        while self.frozen:
            self.frozen.pop().process.send_signal(signal.SIGCONT)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the HTTP API; return the JSON answer, or the text of any other answer."""
        answer = httpx.request(
            method,
            self.url + path,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        assert answer.status_code < 300, (path, answer.status_code, answer.text)
        if "json" in answer.headers.get("content-type", ""):
            return answer.json()
        return answer.text

    def log(self, task_id: str, command: str) -> str:
        """A command's log as the controller holds it."""
        text: str = self.api("GET", f"/api/v1/tasks/{task_id}/logs/{command}")
        return text

    def wait_for_line(self, task_id: str, command: str, timeout: float) -> None:
        """Wait until the controller holds a first line of ``command``'s log."""

        def logged() -> bool:
            answer = httpx.get(
                f"{self.url}/api/v1/tasks/{task_id}/logs/{command}",
                headers={"Authorization": f"Bearer {self.admin_token}"},
                timeout=30,
            )
            return answer.status_code == 200 and f"{command} 1\n" in answer.text

        wait_for(logged, timeout, f"task {task_id} to log its first {command} line")

    def final_build(self, build_id: str, timeout: float) -> dict[str, Any]:
        """Wait until a build is no longer executing; return it."""

        def final() -> dict[str, Any] | None:
            build: dict[str, Any] = self.api("GET", f"/api/v1/builds/{build_id}")
            return None if build["status"] in ("CREATED", "EXECUTING") else build

        build: dict[str, Any] = wait_for(final, timeout, f"build {build_id} to end")
        return build

    def stop(self) -> list[str]:
        """Stop the worker, then the controller; return complaints (exit codes, hangs)."""
        self.thaw()
        complaints = []
        for what, process in (("worker", self.worker), ("controller", self.controller)):
            try:
                code = process.terminate(timeout=60)
            except AssertionError as error:
                complaints.append(f"{what}: {error}")
                continue
            if code != 0:
                complaints.append(f"{what} exited with {code}: {process.stderr()[-3000:]}")
        return complaints


class StoppablePostgres(PostgresServer):
    """A private PostgreSQL cluster that a test may stop and start again on the same port."""

    halted = False

    def halt(self) -> None:
        """Stop the server (fast: open connections are ended); keep its files."""
        self._run(find_program("pg_ctl"), "--pgdata", str(self.data_dir), "--mode", "fast",
                  "--wait", "stop")  # fmt: skip
        self.halted = True

    def resume(self) -> None:
        """Start the stopped server again: ``restart`` reuses the options it last ran with."""
        self._run(find_program("pg_ctl"), "--pgdata", str(self.data_dir), "--log",
                  str(self.log_file), "--wait", "--timeout", "60", "restart")  # fmt: skip
        self.halted = False

    def stop(self) -> None:
        """Stop the server unless a test left it stopped; delete its files."""
        if self.halted:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            super().stop()


def private_postgres() -> Iterator[StoppablePostgres]:
    """Start a private cluster for one test; stop it and delete its files afterwards."""
    server = StoppablePostgres.start()
    assert isinstance(server, StoppablePostgres)
    try:
        yield server
    finally:
        server.stop()
