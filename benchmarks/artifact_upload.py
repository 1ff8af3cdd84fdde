"""The worker's memory while it uploads a big artifact: RSS growth must stay under 50 MB.

Run from the checkout: ``.venv/bin/python -m benchmarks.artifact_upload [--size-mb 2048]
[--check]``. A real ``cirrus worker run`` gets a ``none`` task from the fake controller that
writes ``--size-mb`` MiB of random bytes and uploads them as an artifact (a streaming PUT to the
fake's ``/blobs/`` URL, which writes to disk). A first task with a 1 KiB artifact warms the
worker up (imports, connections); the baseline is its RSS after that, the peak the largest of
samples taken every 20 ms during the big upload. Prints the growth, the upload time and whether
the SHA-256 of the stored blob matches the file's.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
from tests.integration.child_environment import NO_OTLP_EXPORT
from tests.integration.fake_controller import FakeController, FakeTask, command, script

from benchmarks.worker_bench import running_worker

RSS_GROWTH_TARGET_MB = 50.0
MB = 1024 * 1024


@dataclass(frozen=True)
class UploadMeasurement:
    """What one big-artifact run measured."""

    size_mb: int
    baseline_rss_mb: float
    peak_rss_mb: float
    seconds: float
    sha256_matches: bool

    @property
    def growth_mb(self) -> float:
        """Peak RSS minus the warmed-up baseline."""
        return self.peak_rss_mb - self.baseline_rss_mb


def artifact_task(size_mb: int) -> FakeTask:
    """A task writing ``size_mb`` MiB (0: 1 KiB) to ``big.bin`` and uploading it, then its hash."""
    count = f"bs=1M count={size_mb}" if size_mb else "bs=1024 count=1"
    return FakeTask(
        "art-" + uuid.uuid4().hex[:10],
        [
            script("write", f"dd if=/dev/urandom of=big.bin {count} 2>/dev/null"),
            command("big", {"artifactsInstruction": {"paths": ["big.bin"]}}),
            script("hash", "sha256sum big.bin"),
        ],
    )


def _run(controller: FakeController, task: FakeTask, timeout: float) -> FakeTask:
    controller.queue_task(task)
    controller.wait_for(
        lambda: controller.task(task.task_id).stopped, timeout, f"TaskStopped of {task.task_id}"
    )
    return controller.task(task.task_id)


def _rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / MB


def measure(size_mb: int, timeout: float = 900.0) -> UploadMeasurement:
    """Run the warm-up and the big task against a fresh worker; return the figures."""
    controller = FakeController()
    controller.start()
    try:
        # No OTLP export: a failed export's first load would count as upload memory.
        with (
            tempfile.TemporaryDirectory(prefix="artifact-bench-") as scratch,
            running_worker(controller, Path(scratch), NO_OTLP_EXPORT) as worker,
        ):
            process = psutil.Process(worker.pid)
            _run(controller, artifact_task(0), timeout)
            baseline = _rss_mb(process)
            peak = baseline
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.wait(0.02):
                    peak = max(peak, _rss_mb(process))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            task = _run(controller, artifact_task(size_mb), timeout)
            seconds = time.monotonic() - started
            done.set()
            sampler.join()
        statuses = task.final_statuses()
        if statuses.get("big") != "COMPLETED":
            raise RuntimeError(f"the upload failed: {statuses}: {task.log_text('big')}")
        stored = controller.blobs.stored(f"artifacts/{task.task_id}/big/big.bin")
        expected = task.log_text("hash").split(" ", 1)[0]
        matches = stored is not None and stored.sha256 == expected and stored.size == size_mb * MB
        return UploadMeasurement(size_mb, baseline, peak, seconds, matches)
    finally:
        controller.stop()


def main(argv: list[str] | None = None) -> int:
    """Print the measurement; with ``--check``, exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.size_mb)
    throughput = result.size_mb / result.seconds if result.seconds else 0.0
    print(f"artifact size:        {result.size_mb} MiB")
    print(f"worker RSS baseline:  {result.baseline_rss_mb:.1f} MB")
    print(f"worker RSS peak:      {result.peak_rss_mb:.1f} MB")
    print(f"worker RSS growth:    {result.growth_mb:.1f} MB (target < {RSS_GROWTH_TARGET_MB:g})")
    print(f"task time:            {result.seconds:.1f} s ({throughput:.0f} MiB/s incl. writing)")
    print(f"SHA-256 matches:      {result.sha256_matches}")
    missed = result.growth_mb >= RSS_GROWTH_TARGET_MB or not result.sha256_matches
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
