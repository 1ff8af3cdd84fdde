"""Measures a real ``cirrus worker run`` against the fake controller.

Run from the checkout: ``.venv/bin/python -m benchmarks.worker_bench [--runs 20] [--check]``.
Prints the worker's idle RSS (the larger of two samples: after a few polls, and after a first
failed OTLP metric export to a closed port), the poll round trip, and the end-to-end time of a
trivial ``none`` task; ``--check`` exits 1 when a target of ``benchmarks/README.md`` is missed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import yaml
from tests.integration.fake_controller import FakeController, FakeTask, script

CIRRUS = Path(sys.executable).with_name("cirrus")
IDLE_RSS_TARGET_MB = 60.0
TRIVIAL_TASK_TARGET_MS = 50.0
POLL_PATH = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/Poll"
BARE_CLIENT = "bare-http-client"
REGISTER_PATH = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/Register"
# The worker's one warning per failed metric export (adapters/telemetry/export.py).
EXPORT_FAILED = "telemetry export of metrics"
EXPORT_INTERVAL_MS = 2000


@dataclass(frozen=True)
class Results:
    """What one benchmark run measured."""

    polling_rss_mb: float
    exported_rss_mb: float
    bare_poll_ms: float
    poll_overhead_ms: float
    task_started_to_stopped_ms: list[float]
    task_delivered_to_stopped_ms: list[float]

    @property
    def idle_rss_mb(self) -> float:
        """The idle worker's RSS: the larger sample, since exports keep what they load."""
        return max(self.polling_rss_mb, self.exported_rss_mb)


@contextmanager
def running_worker(
    controller: FakeController, workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cirrus worker run`` against ``controller``; kill its session afterwards."""
    config = {
        "name": "bench-" + uuid.uuid4().hex[:8],
        "token": controller.registration_token,
        "rpc": {"endpoint": controller.url},
        "log": {"level": "warning", "file": str(workdir / "worker.log")},
    }
    config_path = workdir / "worker.yml"
    config_path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRRUS_")}
    env["TMPDIR"] = str(workdir)
    env.update(extra_env or {})
    with (workdir / "worker.stderr").open("wb") as err:
        process = subprocess.Popen(
            [str(CIRRUS), "worker", "run", "-f", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def bare_poll_round_trip_ms(controller: FakeController, samples: int = 50) -> float:
    """Median time of one Poll over a kept-alive HTTP connection, without any worker."""
    with httpx.Client(base_url=controller.url) as client:
        name = BARE_CLIENT
        body = {
            "registrationToken": controller.registration_token,
            "workerInfo": {"labels": {"name": name}},
        }
        session = client.post(REGISTER_PATH, json=body).json()["sessionToken"]
        headers = {
            "registration-token": controller.registration_token,
            "session-token": session,
            "worker-name": name,
        }
        timings = []
        for _ in range(samples):
            begun = time.perf_counter()
            client.post(POLL_PATH, json={"workerInfo": {}}, headers=headers).raise_for_status()
            timings.append((time.perf_counter() - begun) * 1000)
    return statistics.median(timings)


def worker_polls(controller: FakeController) -> list[float]:
    """Times of the worker's successful polls (not the bare client's)."""
    return [
        c.at
        for c in controller.successful_calls("Poll")
        if c.headers.get("worker-name", "").startswith("bench-")
        and c.headers.get("worker-name") != BARE_CLIENT
    ]


def time_trivial_task(controller: FakeController) -> tuple[float, float]:
    """Queue a ``true`` task; return ms from TaskStarted, and from delivery, to TaskStopped."""
    task = FakeTask("bench-" + uuid.uuid4().hex[:10], [script("main", "true")])
    controller.queue_task(task)
    stopped_at = controller.wait_for(
        lambda: controller.task(task.task_id).stopped_at, 30, f"TaskStopped of {task.task_id}"
    )
    delivered_at = controller.task(task.task_id).delivered_at
    assert delivered_at is not None
    started = next(
        c.at
        for c in controller.successful_calls("TaskStarted")
        if c.headers.get("org.cirruslabs.task-id") == task.task_id
    )
    return (stopped_at - started) * 1000, (stopped_at - delivered_at) * 1000


def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def metrics_exported() -> bool:
    """Whether the worker, in this environment, exports metrics over OTLP at all."""
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return not disabled and os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() != "none"


def rss_after_failed_export(controller: FakeController) -> float:
    """RSS in MB of a worker that has tried, and failed, to export its metrics once."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    extra_env = {
        "OTEL_METRIC_EXPORT_INTERVAL": str(EXPORT_INTERVAL_MS),
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }
    with (
        tempfile.TemporaryDirectory(prefix="cirrus-bench-") as tmp,
        running_worker(controller, Path(tmp), extra_env) as process,
    ):
        log_file = Path(tmp) / "worker.log"
        controller.give_up_check = lambda: (
            None if process.poll() is None else f"worker exited with {process.returncode}"
        )
        controller.wait_for(
            lambda: log_file.exists() and EXPORT_FAILED in log_file.read_text(),
            30,
            "a failed metric export in the worker's log",
        )
        # Idle again: a poll answered after the export gave up.
        seen = len(worker_polls(controller))
        controller.wait_for(lambda: len(worker_polls(controller)) >= seen + 2, 30, "two polls")
        rss = psutil.Process(process.pid).memory_info().rss / 1e6
        controller.give_up_check = None
    return rss


def measure(runs: int) -> Results:
    """Run every measurement once and return the numbers."""
    controller = FakeController(poll_interval=1, hold_poll_seconds=0.0)
    controller.start()
    try:
        bare_ms = bare_poll_round_trip_ms(controller)
        with (
            tempfile.TemporaryDirectory(prefix="cirrus-bench-") as tmp,
            running_worker(controller, Path(tmp)) as process,
        ):
            controller.give_up_check = lambda: (
                None if process.poll() is None else f"worker exited with {process.returncode}"
            )
            controller.wait_for_call("Register", timeout=30)
            controller.wait_for(lambda: len(worker_polls(controller)) >= 6, 30, "six polls")
            polling_rss_mb = psutil.Process(process.pid).memory_info().rss / 1e6
            polls = worker_polls(controller)[1:]
            gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
            overhead_ms = (statistics.median(gaps) - 1.0) * 1000

            # Held polls from here on: a task queued while the worker waits in a Poll reaches
            # it at once.
            controller.set_poll_interval(1, hold_poll_seconds=1.0)
            time_trivial_task(controller)  # warm-up: first imports, first working dir
            timings = [time_trivial_task(controller) for _ in range(runs)]
        controller.set_poll_interval(1, hold_poll_seconds=0.0)
        # Without metric export (turned off in this environment) there is no export to wait for.
        exported_rss_mb = rss_after_failed_export(controller) if metrics_exported() else 0.0
        return Results(
            polling_rss_mb,
            exported_rss_mb,
            bare_ms,
            overhead_ms,
            [from_started for from_started, _ in timings],
            [from_queued for _, from_queued in timings],
        )
    finally:
        controller.give_up_check = None
        controller.stop()


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Print the measurements; with ``--check``, return 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="trivial tasks to time (default 20)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if not CIRRUS.exists():
        print(f"{CIRRUS} is not installed", file=sys.stderr)
        return 2

    results = measure(args.runs)
    task_ms = statistics.median(results.task_started_to_stopped_ms)
    print(f"RSS after registration and polls: {results.polling_rss_mb:.1f} MB")
    if results.exported_rss_mb:
        print(
            f"RSS after a failed metric export (interval {EXPORT_INTERVAL_MS} ms, closed port): "
            f"{results.exported_rss_mb:.1f} MB"
        )
    else:
        print("RSS after a failed metric export: not measured (metric export is off)")
    print(
        f"idle RSS, the larger of both: {results.idle_rss_mb:.1f} MB "
        f"(target <= {IDLE_RSS_TARGET_MB:.0f} MB)"
    )
    print(
        f"poll round trip, bare HTTP to the fake controller: median {results.bare_poll_ms:.2f} ms"
    )
    print(
        f"worker poll cycle overhead beyond the interval: median {results.poll_overhead_ms:.1f} ms"
    )
    print(
        f"trivial none task, TaskStarted -> TaskStopped: median {task_ms:.1f} ms, "
        f"p90 {percentile(results.task_started_to_stopped_ms, 0.9):.1f} ms over {args.runs} runs "
        f"(target <= {TRIVIAL_TASK_TARGET_MS:.0f} ms)"
    )
    print(
        "trivial none task, delivered in a Poll answer -> TaskStopped: median "
        f"{statistics.median(results.task_delivered_to_stopped_ms):.1f} ms"
    )
    missed = results.idle_rss_mb > IDLE_RSS_TARGET_MB or task_ms > TRIVIAL_TASK_TARGET_MS
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
