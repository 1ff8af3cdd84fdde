"""Measures a real ``cirrus controller run`` with one real ``cirrus worker run``.

Run from the checkout::

    .venv/bin/python -m benchmarks.controller_bench [--backend sqlite|postgresql] [--check]

For each backend (both by default; PostgreSQL on a private cluster started for the run with the
helpers of ``tests/integration/postgres_server.py``) it prints:

* pickup latency: one-task builds submitted one after another (the next once the previous
  ended), from the task's creation to the worker's ``TaskStarted``, both as the controller
  recorded them in the database; p50 and p99 (targets: <= 100 ms, <= 300 ms);
* throughput: one build of many trivial tasks (``slots: 1`` each) on a worker with
  ``slots: 8``, tasks per second from submission to the last ``TaskStopped`` (target: >= 50/s).

``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from tests.integration.postgres_server import PostgresServer

from adapters.storage.open_store import open_store
from app.worker.clock import SystemClock

CIRRUS = Path(sys.executable).with_name("cirrus")
PICKUP_P50_TARGET_MS = 100.0
PICKUP_P99_TARGET_MS = 300.0
THROUGHPUT_TARGET_PER_SECOND = 50.0
START_TIMEOUT_SECONDS = 30.0
TASK_TIMEOUT_SECONDS = 300.0

TRIVIAL_TASK = "  persistent_worker:\n    resources:\n      slots: 1\n  script: 'true'\n"


@dataclass(frozen=True)
class Results:
    """What one backend measured."""

    backend: str
    pickup_ms: list[float]
    throughput_tasks: int
    throughput_seconds: float
    burst_cpu_seconds: dict[str, float]

    @property
    def pickup_p50(self) -> float:
        """Median pickup latency in milliseconds."""
        return statistics.median(self.pickup_ms)

    @property
    def pickup_p99(self) -> float:
        """99th percentile pickup latency in milliseconds."""
        ordered = sorted(self.pickup_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    @property
    def per_second(self) -> float:
        """Trivial tasks per second."""
        return self.throughput_tasks / self.throughput_seconds

    def missed(self) -> list[str]:
        """Return the targets this run missed, in words."""
        misses = []
        if self.pickup_p50 > PICKUP_P50_TARGET_MS:
            misses.append(f"pickup p50 {self.pickup_p50:.0f} ms > {PICKUP_P50_TARGET_MS:.0f}")
        if self.pickup_p99 > PICKUP_P99_TARGET_MS:
            misses.append(f"pickup p99 {self.pickup_p99:.0f} ms > {PICKUP_P99_TARGET_MS:.0f}")
        if self.per_second < THROUGHPUT_TARGET_PER_SECOND:
            misses.append(f"throughput {self.per_second:.1f}/s < {THROUGHPUT_TARGET_PER_SECOND}")
        return misses


def _environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRRUS_")}
    env["TMPDIR"] = str(workdir)
    return env


@contextmanager
def running(command: list[str], workdir: Path, label: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run a ``cirrus`` command in its own session; SIGTERM it (then kill) afterwards."""
    with (workdir / f"{label}.out").open("wb") as out:
        process = subprocess.Popen(
            [str(CIRRUS), *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_environment(workdir),
            cwd=workdir,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its reaped children (the worker's task shells), in seconds."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def controller_url(process: subprocess.Popen[bytes], output: Path) -> str:
    """Return the URL a starting controller prints once it listens."""

    def listening() -> str | None:
        if process.poll() is not None:
            raise RuntimeError(f"the controller exited: {output.read_text(errors='replace')}")
        for line in output.read_text(errors="replace").splitlines():
            if line.startswith("controller listening on "):
                return line.split()[-1]
        return None

    url: str = wait_for(listening, START_TIMEOUT_SECONDS, "the controller to listen")
    return url


class Api:
    """The controller's HTTP API over one kept-alive connection."""

    def __init__(self, url: str, admin_token: str) -> None:
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30
        )
        self.status_probes = 0
        """How many times ``build_status`` asked (each costs the controller CPU too)."""

    def submit(self, config: str) -> dict[str, Any]:
        """Submit a build."""
        response = self.client.post("/api/v1/builds", json={"config": config})
        response.raise_for_status()
        build: dict[str, Any] = response.json()
        return build

    def build_status(self, build_id: str) -> str:
        """Return a build's status."""
        self.status_probes += 1
        response = self.client.get(f"/api/v1/builds/{build_id}")
        response.raise_for_status()
        return str(response.json()["status"])

    def workers(self) -> list[dict[str, Any]]:
        """Return the registered workers."""
        response = self.client.get("/api/v1/workers")
        response.raise_for_status()
        workers: list[dict[str, Any]] = response.json()
        return workers

    def run_to_end(self, config: str, every: float) -> list[str]:
        """Submit a build, wait until it ends (it must complete); return its task ids."""
        build = self.submit(config)
        status = wait_for(
            lambda: (s := self.build_status(build["id"])) != "EXECUTING" and s,
            TASK_TIMEOUT_SECONDS,
            f"build {build['id']} to end",
            every,
        )
        if status != "COMPLETED":
            raise RuntimeError(f"build {build['id']} ended {status}")
        return [task["id"] for task in build["tasks"]]


async def _task_times(url: str, task_ids: list[str]) -> list[tuple[float, float, float]]:
    """Return (created, started, stopped) of tasks as the controller stored them."""
    store = await open_store(url, SystemClock())
    try:
        times = []
        for task_id in task_ids:
            task = await store.get_task(task_id)
            assert task is not None
            assert task.started_at is not None
            assert task.stopped_at is not None
            times.append((task.created_at, task.started_at, task.stopped_at))
        return times
    finally:
        await store.aclose()


def measure(backend: str, database: str, workdir: Path, pickups: int, burst: int) -> Results:
    """Start a controller and a worker on ``database``; measure pickup and throughput."""
    registration, admin = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    controller_args = [
        "controller",
        "run",
        "--listen",
        "127.0.0.1:0",
        "--database",
        database,
        "--registration-token",
        registration,
        "--admin-token",
        admin,
    ]
    with running(controller_args, workdir, "controller") as controller:
        url = controller_url(controller, workdir / "controller.out")
        worker_file = workdir / "worker.yml"
        worker_file.write_text(
            yaml.safe_dump(
                {
                    "name": "bench-" + uuid.uuid4().hex[:8],
                    "token": registration,
                    "rpc": {"endpoint": url},
                    "resources": {"slots": 8},
                    "log": {"level": "warning", "file": str(workdir / "worker.log")},
                }
            )
        )
        with running(["worker", "run", "-f", str(worker_file)], workdir, "worker") as worker:
            processes = {"controller": controller, "worker": worker}
            api = Api(url, admin)
            try:
                wait_for(api.workers, START_TIMEOUT_SECONDS, "the worker to register")
                for _ in range(3):  # warm-up: imports, connections, caches
                    api.run_to_end("task:\n" + TRIVIAL_TASK, every=0.005)
                picked: list[str] = []
                for _ in range(pickups):
                    picked += api.run_to_end("task:\n" + TRIVIAL_TASK, every=0.005)
                config = "".join(f"t{i}_task:\n{TRIVIAL_TASK}" for i in range(burst))
                before = {name: _cpu_seconds(p.pid) for name, p in processes.items()}
                burst_ids = api.run_to_end(config, every=0.5)
                cpu = {name: _cpu_seconds(p.pid) - before[name] for name, p in processes.items()}
            finally:
                api.client.close()
    pickup_times = asyncio.run(_task_times(database, picked))
    burst_times = asyncio.run(_task_times(database, burst_ids))
    first_created = min(created for created, _, _ in burst_times)
    last_stopped = max(stopped for _, _, stopped in burst_times)
    return Results(
        backend=backend,
        pickup_ms=[(started - created) * 1000 for created, started, _ in pickup_times],
        throughput_tasks=len(burst_ids),
        throughput_seconds=last_stopped - first_created,
        burst_cpu_seconds=cpu,
    )


def run_backend(backend: str, pickups: int, burst: int) -> Results:
    """Measure one backend on a fresh database in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="cirrus-controller-bench-") as directory:
        workdir = Path(directory)
        if backend == "sqlite":
            return measure(
                backend, f"sqlite:///{workdir / 'controller.db'}", workdir, pickups, burst
            )
        server = PostgresServer.start()
        try:
            return measure(backend, server.create_database(), workdir, pickups, burst)
        finally:
            server.stop()


def report(results: Results) -> None:
    """Print one backend's numbers."""
    print(
        f"{results.backend:>10}: pickup p50 {results.pickup_p50:6.1f} ms, "
        f"p99 {results.pickup_p99:6.1f} ms (n={len(results.pickup_ms)}, "
        f"max {max(results.pickup_ms):.1f} ms); throughput {results.per_second:6.1f} tasks/s "
        f"({results.throughput_tasks} tasks in {results.throughput_seconds:.2f} s)"
    )
    per_task = ", ".join(
        f"{name} {seconds * 1000 / results.throughput_tasks:.1f} ms"
        for name, seconds in results.burst_cpu_seconds.items()
    )
    print(f"{'':>10}  CPU per throughput task: {per_task}")


def main() -> int:
    """Parse the flags, run the benchmark, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--tasks", type=int, default=100, help="pickup samples [100]")
    parser.add_argument("--burst", type=int, default=200, help="throughput tasks [200]")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    misses: list[str] = []
    for backend in args.backend or ["sqlite", "postgresql"]:
        results = run_backend(backend, args.tasks, args.burst)
        report(results)
        misses += [f"{backend}: {miss}" for miss in results.missed()]
    for miss in misses:
        print("missed:", miss)
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    sys.exit(main())
