"""What telemetry costs the worker when no collector is listening.

Run from the checkout: ``.venv/bin/python -m benchmarks.telemetry_bench [--runs 15] [--polls 8]``.
Starts the real ``cirrus worker run`` against the fake controller of
``tests/integration/fake_controller.py`` once per mode and prints, per mode, the median and p90 of
the poll-loop period (poll interval 1 s, answered at once) and of a trivial ``none`` task (one
``true`` script; from ``TaskStarted`` to ``TaskStopped``, and from delivery to ``TaskStopped``).

Modes: ``OTEL_SDK_DISABLED=true``; telemetry on with the SDK's default export intervals; and
telemetry on exporting every second (spans every 0.2 s), so failed exports happen during the
measurement. In both "on" modes the OTLP endpoint is a closed port of 127.0.0.1.
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
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import yaml
from tests.integration.fake_controller import FakeController, FakeTask, script

CIRRUS = Path(sys.executable).with_name("cirrus")
WORKER_PREFIX = "otelbench-"


@dataclass(frozen=True)
class ModeResult:
    """What one mode measured, in milliseconds."""

    mode: str
    poll_periods_ms: list[float]
    started_to_stopped_ms: list[float]
    delivered_to_stopped_ms: list[float]


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def modes() -> dict[str, dict[str, str]]:
    """Environment of each mode; every OTEL_* variable of the caller is dropped first."""
    nowhere = f"http://127.0.0.1:{closed_port()}"
    return {
        "OTEL_SDK_DISABLED=true": {"OTEL_SDK_DISABLED": "true"},
        "on, default intervals": {"OTEL_EXPORTER_OTLP_ENDPOINT": nowhere},
        "on, export every 1 s": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": nowhere,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    }


@contextmanager
def running_worker(
    controller: FakeController, workdir: Path, otel: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cirrus worker run`` with ``otel`` in its environment; kill its session after."""
    config = {
        "name": WORKER_PREFIX + uuid.uuid4().hex[:8],
        "token": controller.registration_token,
        "rpc": {"endpoint": controller.url},
        "log": {"level": "warning", "file": str(workdir / "worker.log")},
    }
    config_path = workdir / "worker.yml"
    config_path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIRRUS_", "OTEL_"))}
    env.update(otel)
    env["TMPDIR"] = str(workdir)
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


def worker_polls(controller: FakeController) -> list[float]:
    """Monotonic times of the worker's successful polls."""
    return [c.at for c in controller.successful_calls("Poll")]


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


def measure(mode: str, otel: Mapping[str, str], runs: int, polls: int) -> ModeResult:
    """Poll periods, then ``runs`` trivial tasks (after one warm-up), of a fresh worker."""
    controller = FakeController(poll_interval=1, hold_poll_seconds=0.0)
    controller.start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="cirrus-otel-bench-") as tmp,
            running_worker(controller, Path(tmp), otel) as process,
        ):
            controller.give_up_check = lambda: (
                None if process.poll() is None else f"worker exited with {process.returncode}"
            )
            controller.wait_for_call("Register", timeout=30)
            # The first poll follows registration; periods are counted from the second one on.
            controller.wait_for(
                lambda: len(worker_polls(controller)) >= polls + 2, 30 + 2 * polls, "polls"
            )
            times = worker_polls(controller)[1:]
            periods = [(later - earlier) * 1000 for earlier, later in itertools.pairwise(times)]
            # Held polls: a task queued while the worker waits in a Poll reaches it at once.
            controller.set_poll_interval(1, hold_poll_seconds=1.0)
            time_trivial_task(controller)  # warm-up: first imports, first working directory
            timings = [time_trivial_task(controller) for _ in range(runs)]
        return ModeResult(mode, periods, [s for s, _ in timings], [d for _, d in timings])
    finally:
        controller.give_up_check = None
        controller.stop()


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(values: list[float]) -> str:
    """``median / p90`` in milliseconds."""
    return f"{statistics.median(values):8.1f} / {percentile(values, 0.9):8.1f}"


def main(argv: list[str] | None = None) -> int:
    """Measure every mode and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="trivial tasks per mode (15)")
    parser.add_argument("--polls", type=int, default=8, help="poll periods per mode (8)")
    args = parser.parse_args(argv)
    if not CIRRUS.exists():
        print(f"console script {CIRRUS} is not installed", file=sys.stderr)
        return 2
    results = [measure(mode, otel, args.runs, args.polls) for mode, otel in modes().items()]
    print("median / p90 in ms; poll interval 1 s, OTLP endpoint a closed port")
    header = (
        f"{'mode':<24} {'poll period':>19} {'task started->stopped':>23} {'delivered->stopped':>20}"
    )
    print(header)
    for result in results:
        print(
            f"{result.mode:<24} {summary(result.poll_periods_ms):>19} "
            f"{summary(result.started_to_stopped_ms):>23} "
            f"{summary(result.delivered_to_stopped_ms):>20}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
