"""Benchmark of the web interface: a task page over a 200 MB log, and a build page of 200 tasks.

Fills a SQLite database in-process (a build whose task logged ``--log-mb`` MiB with ANSI
colours, and a build of ``--tasks`` tasks in ten stages), starts the real
``cirrus controller run`` on it, logs in like a browser and prints, over ``--runs`` requests:
the task page's size and response time, and the build page's response time (server-side
rendering plus a loopback round trip). With ``--browser`` it also opens the task page in
headless Chromium (Debian's, through chromedriver) and reads the page's first contentful paint
from the browser's own Paint Timing entries. Targets: task page **< 2 MB** and first render
**< 1 s**; build page of 200 tasks **< 200 ms**. ``--check`` exits 1 when a target is missed.

    .venv/bin/python -m benchmarks.web_pages [--log-mb 200] [--tasks 200] [--runs 10]
                                             [--browser] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from adapters.cirrus_config.parse_build import parse_build
from adapters.storage.open_store import open_store
from app.worker.clock import SystemClock

CIRRUS = Path(sys.executable).with_name("cirrus")
ADMIN_TOKEN = "web-bench-admin"
LINE = b"\x1b[32mok\x1b[0m step %08d: compiled module with a reasonably long line of output\n"
MIB = 1024 * 1024


def many_tasks_config(count: int) -> str:
    """A configuration of ``count`` tasks in ten stages, each depending on the stage before."""
    lines = []
    per_stage = max(1, count // 10)
    for index in range(count):
        lines.append(f"t{index}_task:")
        stage = index // per_stage
        if stage:
            lines.append(f"  depends_on: [t{(stage - 1) * per_stage}]")
        lines.append("  script: true")
    return "\n".join(lines) + "\n"


async def fill(url: str, log_mb: int, tasks: int) -> tuple[str, str]:
    """Store the two builds; return the big-log task's id and the big build's id."""
    store = await open_store(url, SystemClock())
    try:
        logged = await store.create_build(parse_build("big_log_task:\n  script: true\n"))
        task_id = logged.tasks[0].id
        chunk = b"".join(LINE % i for i in range(MIB // len(LINE % 0)))
        written = 0
        while written < log_mb * MIB:
            written = await store.append_log(task_id, "main", chunk)
        big = await store.create_build(parse_build(many_tasks_config(tasks)))
        return task_id, big.id
    finally:
        await store.aclose()


def timed_get(client: httpx.Client, path: str, runs: int) -> tuple[list[float], int]:
    """GET ``path`` ``runs`` times (after one warm-up); return the seconds and the body size."""
    client.get(path).raise_for_status()
    seconds, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        seconds.append(time.perf_counter() - start)
        response.raise_for_status()
        size = len(response.content)
    return seconds, size


def start_controller(database: str, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``cirrus controller run`` on a free port; return it and its URL."""
    out = directory / "controller.out"
    process = subprocess.Popen(
        [str(CIRRUS), "controller", "run", "--listen", "127.0.0.1:0", "--database", database,
         "--admin-token", ADMIN_TOKEN, "--registration-token", "web-bench-registration"],
        stdout=out.open("wb"),
        stderr=(directory / "controller.err").open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in out.read_text().splitlines():
            if line.startswith("controller listening on "):
                return process, line.split()[-1]
        if process.poll() is not None:
            raise SystemExit((directory / "controller.err").read_text())
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the controller did not start")


def first_paints(url: str, session: str, path: str, runs: int) -> list[float]:
    """Open ``path`` ``runs`` times in headless Chromium with the session cookie; return the
    first contentful paint of each load, in seconds from the start of the navigation."""
    from selenium import webdriver  # a dev dependency: only this option needs it
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(f"{url}/login")
        driver.add_cookie({"name": "cirrus_session", "value": session, "path": "/"})
        paints: list[float] = []
        for _ in range(runs):
            driver.get(f"{url}{path}")
            started = time.monotonic()
            while True:
                paint = driver.execute_script(
                    "const p = performance.getEntriesByName('first-contentful-paint');"
                    "return p.length ? p[0].startTime : null;"
                )
                if paint is not None or time.monotonic() - started > 30:
                    break
                time.sleep(0.05)
            if paint is None:
                raise RuntimeError(f"{path}: Chromium reported no first contentful paint")
            paints.append(float(paint) / 1000)
        return paints
    finally:
        driver.quit()


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-mb", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--browser", action="store_true", help="first paint in Chromium too")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    paints: list[float] = []
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        database = f"sqlite:///{directory / 'web.db'}"
        started = time.perf_counter()
        task_id, build_id = asyncio.run(fill(database, args.log_mb, args.tasks))
        print(f"filled: {args.log_mb} MiB log, {args.tasks}-task build "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        process, url = start_controller(database, directory)
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                client.post("/login", data={"token": ADMIN_TOKEN, "next": "/"})
                assert "cirrus_session" in client.cookies, "login failed"
                task_seconds, task_bytes = timed_get(client, f"/tasks/{task_id}", args.runs)
                build_seconds, build_bytes = timed_get(client, f"/builds/{build_id}", args.runs)
                if args.browser:
                    cookie = client.cookies["cirrus_session"]
                    paints = first_paints(url, cookie, f"/tasks/{task_id}", args.runs)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    task_p50, build_p50 = statistics.median(task_seconds), statistics.median(build_seconds)
    print(f"task page over a {args.log_mb} MiB log: {task_bytes / 1024:.0f} KiB, "
          f"median {task_p50 * 1000:.0f} ms, max {max(task_seconds) * 1000:.0f} ms "
          "(targets < 2048 KiB, < 1000 ms)")  # fmt: skip
    print(f"build page of {args.tasks} tasks: {build_bytes / 1024:.0f} KiB, "
          f"median {build_p50 * 1000:.0f} ms, max {max(build_seconds) * 1000:.0f} ms "
          "(target < 200 ms)")  # fmt: skip
    missed = task_bytes >= 2 * MIB or task_p50 >= 1.0 or build_p50 >= 0.2
    if paints:
        paint_p50 = statistics.median(paints)
        print(f"task page in Chromium: first contentful paint median {paint_p50 * 1000:.0f} ms, "
              f"max {max(paints) * 1000:.0f} ms (target < 1000 ms)")  # fmt: skip
        missed = missed or paint_p50 >= 1.0
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
