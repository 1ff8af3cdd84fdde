"""Measures how the cost of a task grows with the number of idle workers long-polling.

Run from the checkout::

    .venv/bin/python -m benchmarks.controller_scale [--n 0,100,500,1000,2000] [--check]
        [--backend sqlite|postgresql] [--profile DIR]

For each N it starts a real ``cirrus controller run`` (SQLite in a temporary directory; with
``--backend postgresql`` two controllers on one private PostgreSQL cluster), one real
``cirrus worker run`` with the label ``pool: real`` that takes the tasks, and N simulated idle
workers (asyncio clients in a thread of this process, speaking the Twirp JSON of
``spec/PROTOCOL.md``: ``Register``, then ``Poll`` in a loop) with the label ``pool: idle``, so
that no task fits them. With two controllers the idle workers and the real one are split
between them. Then 50 one-task builds for ``pool: real`` are submitted one after another, and it
prints per N:

* pickup p50/p99: task creation to the worker's ``TaskStarted``, as the controller stored both;
* controller CPU per task: ``/proc/<pid>/stat`` utime + stime over the submissions, less what
  the idle polls cost in as long (at the idle rate), divided by the tasks (all controllers
  together; the raw figure in parentheses);
* idle CPU: controller CPU while the N polls are merely held, in % of one core;
* RSS of the (first) controller after the run;
* early answers per task: idle polls answered before their interval with nothing to do (a
  woken poll that found no work), counted by the clients;
* idle poll latency: how much later than the poll interval a held idle poll was answered (p50
  and p99; the controller holds a poll for 90-100 % of the interval, an answer within it counts
  0), and errors the clients saw;
* probes/task: how often this benchmark asked a build's status until its task ended (every
  ``STATUS_PROBE_SECONDS``); their cost is part of the CPU per task.

``--check`` exits 1 when a target of issue 18 is missed (at N = 1,000: pickup p50 <= 20 ms, p99
<= 50 ms, CPU per task <= 20 ms and <= 1.5x N = 0, idle CPU < 25 %; at N = 2,000: no errors,
RSS < 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.integration.postgres_server import PostgresServer

from benchmarks.controller_bench import (
    CIRRUS,
    START_TIMEOUT_SECONDS,
    Api,
    _task_times,
    controller_url,
    running,
    wait_for,
)

PACKAGE = "org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService"
TASK = "task:\n  persistent_worker:\n    labels:\n      pool: real\n  script: 'true'\n"
SUBMISSIONS = 50
IDLE_WINDOW_SECONDS = 10.0
"""One poll interval: every idle poll is answered and made again once within it."""
STATUS_PROBE_SECONDS = 0.02
"""How often the build's status is asked while a task runs. Each probe costs the controller
about 0.4 ms of CPU, which the CPU per task includes: asked every 5 ms, 4.1 probes per task
made it 15.6 ms at N = 0, against 13.2 ms with 2.0 probes every 20 ms (one run each). The
pickup figures come from stored times and do not depend on this."""
EARLY_SLACK = 0.9
"""A poll answered sooner than this fraction of its interval was answered early."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process from ``/proc/<pid>/stat``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class FleetStats:
    """What the simulated idle workers saw."""

    registered: int = 0
    polling: int = 0
    held: int = 0
    early: int = 0
    errors: int = 0
    tasks_offered: int = 0
    overshoot_ms: list[float] = field(default_factory=list)
    last_error: str = ""


class IdleFleet:
    """N idle workers long-polling, on an asyncio loop in a thread of their own."""

    def __init__(self, urls: list[str], count: int, token: str) -> None:
        self.urls = urls
        self.count = count
        self.token = token
        self.stats = FleetStats()
        self.counting = False
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))

    def __enter__(self) -> IdleFleet:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        # One client (one connection) per worker, as real workers have: a shared pool of
        # thousands of connections costs httpcore time per request that grows with their number.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        clients = [
            httpx.AsyncClient(base_url=self.urls[i % len(self.urls)], limits=limits, timeout=120)
            for i in range(self.count)
        ]
        gate = asyncio.Semaphore(50)  # registrations at a time
        workers = [
            asyncio.create_task(self._worker(clients[i], i, gate)) for i in range(self.count)
        ]
        await self._stop.wait()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for client in clients:
            await client.aclose()

    async def _worker(self, client: httpx.AsyncClient, index: int, gate: asyncio.Semaphore) -> None:
        name = f"idle-{index}-{uuid.uuid4().hex[:6]}"
        info = {
            "labels": {"name": name, "os": "linux", "arch": "amd64", "pool": "idle"},
            "resourcesTotal": {},
        }
        async with gate:
            answer = await self._call(
                client, "Register", {"registrationToken": self.token, "workerInfo": info}, {}
            )
        if answer is None:
            return
        self.stats.registered += 1
        headers = {
            "registration-token": self.token,
            "session-token": answer["sessionToken"],
            "worker-name": name,
        }
        body = {"workerInfo": info, "runningTasks": []}
        # A fleet's polls are spread over the interval, not all made at the same moment.
        await asyncio.sleep(random.uniform(0, 10))
        self.stats.polling += 1
        while True:
            began = time.monotonic()
            self.stats.held += 1
            answer = await self._call(client, "Poll", body, headers)
            self.stats.held -= 1
            took = time.monotonic() - began
            if answer is None:
                await asyncio.sleep(1.0)
                continue
            interval = float(answer.get("pollIntervalInSeconds", 10))
            if answer.get("tasksToStart"):
                self.stats.tasks_offered += 1
            elif self.counting and took < EARLY_SLACK * interval:
                self.stats.early += 1
            elif self.counting:
                # The controller holds a poll for 90-100 % of the interval: only the part past
                # the interval is late.
                self.stats.overshoot_ms.append(max(0.0, took - interval) * 1000)

    async def _call(
        self, client: httpx.AsyncClient, method: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any] | None:
        try:
            response = await client.post(
                f"/twirp/{PACKAGE}/{method}",
                json=body,
                headers={"Content-Type": "application/json", **headers},
            )
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer
        except (httpx.HTTPError, ValueError) as error:
            self.stats.errors += 1
            self.stats.last_error = f"{method}: {error!r}"
            return None


@dataclass(frozen=True)
class Row:
    """One N's measurements."""

    n: int
    pickup_ms: list[float]
    cpu_ms_per_task: float
    raw_cpu_ms_per_task: float
    idle_cpu_percent: float
    rss_mb: float
    early_per_task: float
    overshoot_p50_ms: float
    overshoot_p99_ms: float
    errors: int
    probes_per_task: float

    @property
    def p50(self) -> float:
        """Pickup median in ms."""
        return statistics.median(self.pickup_ms)

    @property
    def p99(self) -> float:
        """Pickup 99th percentile in ms."""
        return percentile(self.pickup_ms, 0.99)


def controller_command(args: list[str], profile: Path | None) -> list[str]:
    """The arguments of ``running`` for a controller; under cProfile (into ``profile``) if set.

    ``running`` starts ``cirrus`` itself: a profiled controller is ``python -m cProfile -o
    FILE cirrus ...`` instead, which writes its profile when SIGTERM ends it normally.
    """
    if profile is None:
        return args
    return ["-m", "cProfile", "-o", str(profile), str(CIRRUS), *args]


@contextmanager
def python_running(
    command: list[str], workdir: Path, label: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``running`` for ``python COMMAND`` (a profiled controller): SIGTERM it afterwards."""
    with (workdir / f"{label}.out").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("CIRRUS_")},
            cwd=workdir,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)  # the profile is written on the way out
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def measure(
    n: int, database: str, controllers: int, workdir: Path, profile: Path | None = None
) -> Row:
    """Run one N: controllers on ``database``, a real worker, N idle ones, 50 submissions."""
    registration, admin = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    with ExitStack() as stack:
        processes, urls = [], []
        for index in range(controllers):
            args = ["controller", "run", "--listen", "127.0.0.1:0", "--database", database]
            args += ["--registration-token", registration, "--admin-token", admin]
            output = None if profile is None else profile / f"controller{index}-n{n}.prof"
            command = controller_command(args, output)
            starter = running if output is None else python_running
            process = stack.enter_context(starter(command, workdir, f"controller{index}"))
            urls.append(controller_url(process, workdir / f"controller{index}.out"))
            processes.append(process)
        worker_file = workdir / "worker.yml"
        worker_file.write_text(
            yaml.safe_dump(
                {
                    "name": "real-" + uuid.uuid4().hex[:8],
                    "token": registration,
                    "rpc": {"endpoint": urls[-1]},
                    "labels": {"pool": "real"},
                    "log": {"level": "warning", "file": str(workdir / "worker.log")},
                }
            )
        )
        stack.enter_context(running(["worker", "run", "-f", str(worker_file)], workdir, "worker"))
        api = Api(urls[0], admin)
        stack.callback(api.client.close)
        wait_for(api.workers, START_TIMEOUT_SECONDS, "the worker to register")
        fleet = stack.enter_context(IdleFleet(urls, n, registration))
        wait_for(
            lambda: fleet.stats.polling >= n or fleet.stats.errors > n // 10 + 5,
            120 + n / 10,
            f"{n} idle workers to poll",
            every=0.2,
        )
        for _ in range(3):  # warm-up: imports, connections, caches
            api.run_to_end(TASK, every=STATUS_PROBE_SECONDS)
        pids = [process.pid for process in processes]
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(IDLE_WINDOW_SECONDS)
        idle_cpu = sum(cpu_seconds(pid) for pid in pids) - before
        fleet.counting = True
        probes_before = api.status_probes
        before = sum(cpu_seconds(pid) for pid in pids)
        began = time.monotonic()
        picked: list[str] = []
        for _ in range(SUBMISSIONS):
            picked += api.run_to_end(TASK, every=STATUS_PROBE_SECONDS)
        busy_cpu = sum(cpu_seconds(pid) for pid in pids) - before
        probes = api.status_probes - probes_before
        # What the idle polls cost meanwhile anyway is not the tasks' cost.
        idle_share = idle_cpu * (time.monotonic() - began) / IDLE_WINDOW_SECONDS
        fleet.counting = False
        rss = rss_mb(pids[0])
        stats = fleet.stats
    times = asyncio.run(_task_times(database, picked))
    return Row(
        n=n,
        pickup_ms=[(started - created) * 1000 for created, started, _ in times],
        cpu_ms_per_task=max(0.0, busy_cpu - idle_share) * 1000 / len(picked),
        raw_cpu_ms_per_task=busy_cpu * 1000 / len(picked),
        idle_cpu_percent=idle_cpu * 100 / IDLE_WINDOW_SECONDS,
        rss_mb=rss,
        early_per_task=stats.early / len(picked),
        overshoot_p50_ms=percentile(stats.overshoot_ms, 0.5),
        overshoot_p99_ms=percentile(stats.overshoot_ms, 0.99),
        errors=stats.errors + stats.tasks_offered,
        probes_per_task=probes / len(picked),
    )


def run_n(n: int, backend: str, profile: Path | None = None) -> Row:
    """Measure one N on a fresh database in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="cirrus-controller-scale-") as directory:
        workdir = Path(directory)
        if backend == "sqlite":
            return measure(n, f"sqlite:///{workdir / 'controller.db'}", 1, workdir, profile)
        server = PostgresServer.start()
        try:
            return measure(n, server.create_database(), 2, workdir, profile)
        finally:
            server.stop()


HEADER = (
    "|      N | pickup p50 | pickup p99 | CPU/task (raw) | idle CPU |    RSS | early/task "
    "| idle poll late p50/p99 | errors | probes/task |"
)


def row_text(row: Row) -> str:
    """One table row."""
    return (
        f"| {row.n:6d} | {row.p50:7.1f} ms | {row.p99:7.1f} ms "
        f"| {row.cpu_ms_per_task:5.1f} ({row.raw_cpu_ms_per_task:5.1f}) ms "
        f"| {row.idle_cpu_percent:6.1f} % | {row.rss_mb:4.0f} MB | {row.early_per_task:10.2f} "
        f"| {row.overshoot_p50_ms:9.1f} / {row.overshoot_p99_ms:6.1f} ms | {row.errors:6d} "
        f"| {row.probes_per_task:11.1f} |"
    )


def missed(rows: list[Row]) -> list[str]:
    """The targets of issue 18 these rows miss, in words."""
    misses: list[str] = []
    base = next((row for row in rows if row.n == 0), None)
    for row in rows:
        if row.n == 1000:
            if row.p50 > 20:
                misses.append(f"N=1000: pickup p50 {row.p50:.1f} ms > 20 ms")
            if row.p99 > 50:
                misses.append(f"N=1000: pickup p99 {row.p99:.1f} ms > 50 ms")
            if row.cpu_ms_per_task > 20:
                misses.append(f"N=1000: CPU per task {row.cpu_ms_per_task:.1f} ms > 20 ms")
            if base is not None and row.cpu_ms_per_task > 1.5 * base.cpu_ms_per_task:
                misses.append(
                    f"N=1000: CPU per task {row.cpu_ms_per_task:.1f} ms > 1.5x N=0 "
                    f"({base.cpu_ms_per_task:.1f} ms)"
                )
            if row.idle_cpu_percent >= 25:
                misses.append(f"N=1000: idle CPU {row.idle_cpu_percent:.1f} % >= 25 %")
        if row.n == 2000:
            if row.errors:
                misses.append(f"N=2000: {row.errors} errors")
            if row.rss_mb >= 300:
                misses.append(f"N=2000: RSS {row.rss_mb:.0f} MB >= 300 MB")
    return misses


def raise_fd_limit() -> None:
    """Raise this process's open-file soft limit to the hard one (N connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    """Parse the flags, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="0,100,500,1000,2000", help="idle worker counts")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the controllers under cProfile, writing DIR/controller<i>-n<N>.prof "
        "(the figures are then slower; read them with python -m pstats)",
    )
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    raise_fd_limit()
    counts = [int(part) for part in args.n.split(",") if part.strip()]
    controllers = "1 controller" if args.backend == "sqlite" else "2 controllers"
    print(f"backend {args.backend} ({controllers}), {SUBMISSIONS} sequential tasks per N")
    print(HEADER)
    rows = []
    for n in counts:
        rows.append(run_n(n, args.backend, args.profile))
        print(row_text(rows[-1]), flush=True)
    misses = missed(rows)
    for miss in misses:
        print("missed:", miss)
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    sys.exit(main())
