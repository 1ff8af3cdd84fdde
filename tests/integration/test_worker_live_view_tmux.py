"""The live view of ``cirrus worker run`` as a real terminal shows it: tmux, read back with
``capture-pane``.

A real controller and a real worker (logging at debug level, so that log records are printed
all the time) on a 120x40 tmux window of a private tmux server; the test runs a task, pauses
the worker with ``cirrus worker pause`` and reads the screen and its scrollback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.test_controller_cli import (
    BUILD_TIMEOUT,
    CIRRUS,
    Process,
    clean_environment,
    cli,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

# What the live view may hold: its title lines, table borders and rows, the resources grid.
VIEW_LINE_STARTS = (
    "Controllers",
    "Running tasks",
    "No running tasks",
    "resources total",
    "in use",
    "free",
    "┏",
    "┃",
    "┡",
    "│",
    "└",
)

TASK_BUILD = """\
shown_task:
  script:
    - echo "task output"
    - sleep 3
"""


class Tmux:
    """A private tmux server (its own socket) with one 120x40 window."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = "cirrus-test-" + uuid.uuid4().hex[:10]
        self.env = clean_environment(tmp_path)
        self.env.pop("TMUX", None)
        self.env["TERM"] = "xterm-256color"
        self.env.pop("NO_COLOR", None)

    def run(self, *args: str) -> str:
        """Run a tmux command against this server; its stdout."""
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
            timeout=30,
        )
        return result.stdout

    def start(self, command: list[str], cwd: Path) -> None:
        """Start the server with ``command`` in its window."""
        self.run("new-session", "-d", "-x", "120", "-y", "40", "-c", str(cwd), *command)

    def pane_pid(self) -> int:
        """The process id of the command in the window."""
        return int(self.run("display-message", "-p", "#{pane_pid}").strip())

    def screen(self) -> str:
        """The visible screen, as text."""
        return self.run("capture-pane", "-p")

    def everything(self) -> str:
        """The scrollback and the screen, as text."""
        return self.run("capture-pane", "-p", "-S", "-")

    def kill(self) -> None:
        """Stop the server and remove its socket (teardown)."""
        with contextlib.suppress(subprocess.SubprocessError):
            self.run("kill-server")
        # A server that ended with its last window leaves the socket file behind.
        directory = Path(self.env.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (directory / self.socket).unlink(missing_ok=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    """A private tmux server, killed at teardown."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed")
    server = Tmux(tmp_path)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """A real controller on a tmp SQLite database; stopped at teardown."""
    if not CIRRUS.exists():
        pytest.fail(f"console script {CIRRUS} is not installed")
    process, url = start_controller(tmp_path, tmp_path / "controller.db")
    try:
        yield process, url
    finally:
        process.terminate()


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` still exists (tmux, its parent, reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def view_part(screen: str, header: str) -> list[str]:
    """The lines from the view's header to the end of the screen, blank lines dropped."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    return [line for line in lines[start + 1 :] if line.strip()]


def test_the_live_view_in_a_real_terminal_keeps_one_header_and_logs_above_it(
    tmux: Tmux, controller: tuple[Process, str], tmp_path: Path
) -> None:
    process, url = controller
    output = process.stdout()
    admin = printed_token(output, "admin token")
    name = "tmux-" + uuid.uuid4().hex[:8]
    config = tmp_path / "worker.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "token": printed_token(output, "registration token"),
                "rpc": {"endpoint": url},
                "log": {"level": "debug"},
            }
        )
    )
    tmux.start([str(CIRRUS), "worker", "run", "-f", str(config)], tmp_path)
    header = f"cirrus worker {name} ("

    def screen_shows(*texts: str) -> str | None:
        screen = tmux.screen()
        return screen if all(text in screen for text in texts) else None

    idle = wait_for(
        lambda: screen_shows(f"{header}running)", "ok ", "No running tasks"), 30, "an idle view"
    )
    assert "│ none" not in idle

    path = tmp_path / ".cirrus.yml"
    path.write_text(TASK_BUILD)
    submitted = cli(
        tmp_path, "build", "submit", str(path), "--controller", url, "--json", token=admin
    )
    assert submitted.returncode == 0, submitted.stderr
    task_id = json.loads(submitted.stdout)["tasks"][0]["id"]
    running = wait_for(lambda: screen_shows("Running tasks", "running commands"), 30, "the task")
    assert any(line.startswith(f"│ {task_id} ") for line in running.splitlines()), running
    wait_for(lambda: screen_shows("No running tasks"), BUILD_TIMEOUT, "the task to end")

    paused = cli(tmp_path, "worker", "pause", "-f", str(config))
    assert paused.returncode == 0, paused.stdout + paused.stderr
    screen = wait_for(lambda: screen_shows(f"{header}paused)"), 30, "the view to say paused")

    # Log records were printed all along (debug level): above the view, never inside it.
    everything = tmux.everything()
    assert everything.count(header) == 1, everything
    assert everything.count("Controllers") == 1, everything
    assert " answered" in everything.split(header)[0]  # the Twirp client's debug records
    for line in view_part(screen, header):
        assert line.startswith(VIEW_LINE_STARTS), f"{line!r} inside the view:\n{screen}"
    assert "│ none" not in screen

    worker = tmux.pane_pid()
    os.kill(worker, signal.SIGTERM)
    wait_for(lambda: not process_exists(worker), 30, "the worker to stop")
