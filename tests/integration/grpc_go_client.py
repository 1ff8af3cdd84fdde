"""Clients that follow the call sequences of the original Go ``cirrus worker run`` and of the
agent it launches (``internal/worker/``, ``internal/agent/`` of cirruslabs/cirrus-cli), built
on the stubs generated from this project's ``proto/``: what the gRPC tests drive a controller
with. ``run_commands`` executes a task's commands itself, as the agent would, with subprocess.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from adapters.wire import cirrus_ci_service_pb2 as pb
from adapters.wire.cirrus_ci_service_pb2_grpc import (
    CirrusCIServiceStub,
    CirrusWorkersServiceStub,
)

CALL_TIMEOUT = 30.0
Behavior = pb.Command.CommandExecutionBehavior


def _identification(task_id: str, secret: str) -> pb.TaskIdentification:
    # api.OldTaskIdentification: a numeric id goes into the body, any other leaves it empty.
    return (
        pb.TaskIdentification(task_id=int(task_id), secret=secret)
        if task_id.isdigit()
        else (pb.TaskIdentification())
    )


@dataclass
class GoWorker:
    """``cirrus worker run`` talking to ``http://<target>`` (plaintext h2c, as for ``http://``)."""

    target: str
    registration_token: str
    name: str
    session_token: str = ""
    channel: grpc.Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(self.target)
        self.stub = CirrusWorkersServiceStub(self.channel)

    def info(self) -> pb.WorkerInfo:
        """The worker's ``WorkerInfo`` (the reserved labels and its resources)."""
        labels = {"name": self.name, "version": "0.165.2-abc1234", "hostname": "mac-mini"}
        return pb.WorkerInfo(
            labels={**labels, "os": "linux", "arch": "amd64"}, resources_total={"tasks": 4.0}
        )

    def register(self) -> str:
        """``Register`` without metadata, the token in the body; keep the session token."""
        request = pb.RegisterRequest(registration_token=self.registration_token)
        request.worker_info.CopyFrom(self.info())
        self.session_token = self.stub.Register(request, timeout=CALL_TIMEOUT).session_token
        return self.session_token

    def metadata(self) -> list[tuple[str, str]]:
        """The three entries of every call but ``Register`` (``PerRPCCredentials``)."""
        return [
            ("registration-token", self.registration_token),
            ("session-token", self.session_token),
            ("worker-name", self.name),
        ]

    def task_metadata(self, task: pb.PollResponse.AgentAwareTask) -> list[tuple[str, str]]:
        """The metadata of a task-scoped call (the task's outgoing context)."""
        return [
            *self.metadata(),
            ("org.cirruslabs.task-id", task.task_id),
            ("org.cirruslabs.client-secret", task.client_secret),
        ]

    def poll(self, running: tuple[str, ...] = ()) -> pb.PollResponse:
        """One ``Poll`` (the controller may hold it up to its poll interval)."""
        request = pb.PollRequest(running_tasks=list(running))
        request.worker_info.CopyFrom(self.info())
        response: pb.PollResponse = self.stub.Poll(
            request, metadata=self.metadata(), timeout=CALL_TIMEOUT
        )
        return response

    def poll_until_tasks(
        self, timeout: float, running: tuple[str, ...] = ()
    ) -> list[pb.PollResponse.AgentAwareTask]:
        """Poll until the answer hands over tasks; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = list(self.poll(running).tasks_to_start)
            if tasks:
                return tasks
        raise AssertionError(f"no task handed over within {timeout}s")

    def task_started(self, task: pb.PollResponse.AgentAwareTask) -> None:
        """``TaskStarted`` with the old identification and the task metadata."""
        ident = _identification(task.task_id, task.client_secret)
        self.stub.TaskStarted(ident, metadata=self.task_metadata(task), timeout=CALL_TIMEOUT)

    def task_failed(self, task: pb.PollResponse.AgentAwareTask, message: str) -> None:
        """``TaskFailed{message}``."""
        request = pb.TaskFailedRequest(message=message)
        self.stub.TaskFailed(request, metadata=self.task_metadata(task), timeout=15)

    def task_stopped(self, task: pb.PollResponse.AgentAwareTask) -> None:
        """``TaskStopped``: always sent at the end of a task (15 s timeout)."""
        ident = _identification(task.task_id, task.client_secret)
        self.stub.TaskStopped(ident, metadata=self.task_metadata(task), timeout=15)

    def agent(self, task: pb.PollResponse.AgentAwareTask) -> GoAgent:
        """The agent ``runTask`` would launch for ``task`` (``-api-endpoint http://target``)."""
        return GoAgent(self.target, task.task_id, task.client_secret, task.server_secret)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


@dataclass
class GoAgent:
    """``cirrus agent -api-endpoint http://<target> -task-id … -client-token … -server-token …``."""

    target: str
    task_id: str
    client_secret: str
    server_token: str

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(self.target)
        self.stub = CirrusCIServiceStub(self.channel)
        self.ident = _identification(self.task_id, self.client_secret)
        # The agent's metadata, on every call: no worker name, session or registration token.
        self.metadata = [
            ("org.cirruslabs.task-id", self.task_id),
            ("org.cirruslabs.client-secret", self.client_secret),
            ("org.cirruslabs.api-endpoint", f"http://{self.target}"),
        ]

    def initial_commands(self) -> pb.CommandsResponse:
        """``InitialCommands``; the agent panics when the server token is not its own."""
        request = pb.InitialCommandsRequest(local_timestamp=int(time.time()))
        request.task_identification.CopyFrom(self.ident)
        response: pb.CommandsResponse = self.stub.InitialCommands(
            request, metadata=self.metadata, timeout=CALL_TIMEOUT
        )
        if response.serverToken != self.server_token:
            raise AssertionError("Server token is incorrect!")
        return response

    def stream_logs(self, command: str, chunks: list[bytes], *, save: bool = False) -> int:
        """``StreamLogs`` (``save``: ``SaveLogs``, the whole log again after a broken stream):
        the key, then each chunk, gzip-compressed as the agent sends them."""

        def entries() -> Iterator[pb.LogEntry]:
            key = pb.LogEntry.LogKey(command_name=command, raw=False)
            key.task_identification.CopyFrom(self.ident)
            yield pb.LogEntry(key=key)
            for chunk in chunks:
                yield pb.LogEntry(chunk=pb.DataChunk(data=chunk))

        method = self.stub.SaveLogs if save else self.stub.StreamLogs
        response = method(
            entries(),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT,
            compression=grpc.Compression.Gzip,
        )
        return int(response.bytes_logged)

    def report_updates(self, results: list[pb.CommandResult]) -> None:
        """``ReportCommandUpdates`` (the agent's update batcher)."""
        request = pb.ReportCommandUpdatesRequest(updates=results)
        self.stub.ReportCommandUpdates(request, metadata=self.metadata, timeout=CALL_TIMEOUT)

    def heartbeat(self) -> None:
        """``Heartbeat`` (every 60 s in the agent)."""
        request = pb.HeartbeatRequest()
        request.task_identification.CopyFrom(self.ident)
        self.stub.Heartbeat(request, metadata=self.metadata, timeout=CALL_TIMEOUT)

    def report_finished(self, results: list[pb.CommandResult]) -> None:
        """``ReportAgentFinished`` with the history of every command's result."""
        request = pb.ReportAgentFinishedRequest(command_results=results)
        request.task_identification.CopyFrom(self.ident)
        self.stub.ReportAgentFinished(request, metadata=self.metadata, timeout=CALL_TIMEOUT)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


def _should_run(behavior: int, failed: bool) -> bool:
    if behavior == Behavior.ALWAYS:
        return True
    if behavior == Behavior.ON_FAILURE:
        return failed
    if behavior == Behavior.ON_SUCCESS:
        return not failed
    return False  # ON_TIMEOUT: no timeout happens in these tests


def _run_one(
    command: pb.Command, workdir: Path, environment: Mapping[str, str]
) -> tuple[bool, list[bytes]]:
    """Run one command; return whether it succeeded and its output as separate chunks."""
    kind = command.WhichOneof("instruction")
    if kind == "script_instruction":
        script = "\n".join(command.script_instruction.scripts)
        done = subprocess.run(
            ["/bin/sh", "-e", "-c", script],
            cwd=workdir,
            env=dict(environment),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
        # One chunk per line, so that a log arrives in several StreamLogs entries.
        return done.returncode == 0, done.stdout.splitlines(keepends=True)
    if kind == "file_instruction":
        instruction = command.file_instruction
        contents = instruction.from_contents or environment.get(
            instruction.from_environment_variable, ""
        )
        (workdir / instruction.destination_path).write_text(contents)
        return True, [f"wrote {instruction.destination_path}\n".encode()]
    return False, [f"the test agent does not implement {kind}\n".encode()]


def run_commands(agent: GoAgent, workdir: Path) -> list[pb.CommandResult]:
    """Run a task as the agent does: fetch its commands, run each in order with its logs
    streamed and its updates reported, then report the agent finished; return the results."""
    response = agent.initial_commands()
    environment = {
        **os.environ,
        "CIRRUS_WORKING_DIR": str(workdir),
        **response.environment,
    }
    failed = False
    results: list[pb.CommandResult] = []
    for command in response.commands:
        if not _should_run(command.execution_behaviour, failed):
            results.append(pb.CommandResult(name=command.name, status=pb.SKIPPED))
            continue
        agent.report_updates([pb.CommandResult(name=command.name, status=pb.EXECUTING)])
        started = time.monotonic_ns()
        succeeded, chunks = _run_one(command, workdir, environment)
        if chunks:
            agent.stream_logs(command.name, chunks)
        status = pb.COMPLETED if succeeded else pb.FAILED
        failed = failed or not succeeded
        result = pb.CommandResult(
            name=command.name, status=status, duration_in_nanos=time.monotonic_ns() - started
        )
        agent.report_updates([result])
        results.append(result)
    agent.heartbeat()
    agent.report_finished(results)
    return results
