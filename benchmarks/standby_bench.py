"""Standby benchmark: task delivery to first command, standby hit vs cold start (Tart simulator).

Runs the real ``cirrus worker run`` against the fake controller with the Tart simulator on its
``PATH`` and a simulated boot delay (``--boot-delay``, 2 s by default). For each mode it runs
``--runs`` tasks one after another and takes the median time from the poll that delivered a
task to the worker's first ``ReportCommandUpdates`` of it (the first command starting). Cold:
no standby, every task boots its VM. Hit: a standby of the task's isolation is configured and
warm before each task is delivered. The issue asks for a hit at least 5x sooner.

Needs root and ``/usr/sbin/sshd`` (as the VM tests): ``sudo .venv/bin/python -m
benchmarks.standby_bench``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml
from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.vm.sshd import TEST_USER

CIRRUS = Path(sys.executable).with_name("cirrus")
SIMULATORS = Path(__file__).resolve().parents[1] / "tests" / "integration" / "vm" / "simulators"
TARGET_SPEEDUP = 5.0
IMAGE = "ghcr.io/cirruslabs/bench:latest"


def guest_password() -> str:
    """Give the simulated guests' user a fresh random password (created when missing)."""
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", TEST_USER], check=True)
    password = secrets.token_urlsafe(18)
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, check=True)
    return password


def first_command_latency(controller: FakeController, task: FakeTask) -> float:
    """Seconds from the task's delivery to its first ``ReportCommandUpdates``."""
    assert task.delivered_at is not None
    for call in controller.calls("ReportCommandUpdates"):
        if task.task_id in call.headers.values():
            return call.received - task.delivered_at
    raise RuntimeError(f"no command update of {task.task_id}")


def standby_warm(controller: FakeController, after: int) -> bool:
    """Whether a poll after the first ``after`` ones reported a warm standby."""
    polls = controller.successful_calls("Poll")[after:]
    return any(
        isinstance(c.body, dict) and c.body.get("availableStandbyInstancesInformation")
        for c in polls
    )


def run_mode(standby: bool, runs: int, boot_delay: float, password: str) -> list[float]:
    """Latencies of ``runs`` tasks on one worker, with or without a standby."""
    isolation = {"tart": {"image": IMAGE, "user": TEST_USER, "password": password}}
    controller = FakeController(poll_interval=1, hold_poll_seconds=1.0)
    controller.start()
    with tempfile.TemporaryDirectory(prefix="standby-bench-") as tmp:
        home = Path(tmp)
        config: dict[str, Any] = {
            "name": "bench-" + uuid.uuid4().hex[:6],
            "token": controller.registration_token,
            "rpc": {"endpoint": controller.url},
            "resources": {"slots": 1},
            "log": {"level": "info", "file": str(home / "worker.log")},
        }
        if standby:
            config["standby"] = {"isolation": isolation, "resources": {"slots": 1}}
        (home / "worker.yml").write_text(yaml.safe_dump(config))
        env = dict(os.environ)
        env.update(
            PATH=f"{SIMULATORS}{os.pathsep}{env.get('PATH', os.defpath)}",
            CIRRUS_SIM_HOME=str(home / "sim"),
            CIRRUS_SIM_USER=TEST_USER,
            CIRRUS_SIM_PYTHON=sys.executable,
            CIRRUS_SIM_BOOT_DELAY=str(boot_delay),
            CIRRUS_WORKER_STATE_DIR=str(home / "state"),
        )
        worker = subprocess.Popen(
            [str(CIRRUS), "worker", "run", "-f", str(home / "worker.yml")],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        latencies = []
        try:
            for _ in range(runs):
                polls = len(controller.successful_calls("Poll"))
                if standby:
                    controller.wait_for(lambda: standby_warm(controller, polls), 120, "standby")  # noqa: B023
                else:
                    controller.wait_for(
                        lambda: len(controller.successful_calls("Poll")) > polls,  # noqa: B023
                        60,
                        "a poll",
                    )
                task = controller.queue_task(
                    FakeTask(
                        "bench-" + uuid.uuid4().hex[:8],
                        [script("first", "true")],
                        isolation=isolation,
                        resources_to_use={"slots": 1},
                    )
                )
                controller.wait_for(lambda: task.stopped, 120, "task stopped")  # noqa: B023
                latencies.append(first_command_latency(controller, task))
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            controller.stop()
    return latencies


def main() -> int:
    """Run both modes and print their medians and the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--boot-delay", type=float, default=2.0)
    options = parser.parse_args()
    password = guest_password()
    try:
        cold = run_mode(False, options.runs, options.boot_delay, password)
        hit = run_mode(True, options.runs, options.boot_delay, password)
    finally:
        subprocess.run(["usermod", "-p", "!", TEST_USER], check=False)
    cold_median, hit_median = statistics.median(cold), statistics.median(hit)
    speedup = cold_median / hit_median if hit_median > 0 else float("inf")
    print(f"boot delay: {options.boot_delay:.1f} s, runs per mode: {options.runs}")
    print(f"cold start: median {cold_median * 1000:.0f} ms  {[round(v, 3) for v in cold]}")
    print(f"standby hit: median {hit_median * 1000:.0f} ms  {[round(v, 3) for v in hit]}")
    verdict = "meets" if speedup >= TARGET_SPEEDUP else "MISSES"
    print(f"speed-up: {speedup:.1f}x ({verdict} the {TARGET_SPEEDUP:.0f}x target)")
    return 0 if speedup >= TARGET_SPEEDUP else 1


if __name__ == "__main__":
    sys.exit(main())
