"""Black-box tests of ``cirrus controller run`` with a real ``cirrus worker run`` and the user
commands (``build submit|status``, ``task logs|cancel``, ``workers list``) as subprocesses.

Every process runs in its own session on 127.0.0.1; teardown sends SIGTERM, waits, and kills
the whole session if anything is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.child_environment import child_environment

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")
START_TIMEOUT = 30.0
BUILD_TIMEOUT = 90.0

PASSING_BUILD = """\
env:
  GREETING: hello
greet_task:
  say_script: echo "$GREETING from the greet task"
after_task:
  depends_on: greet
  script:
    - echo "after greet"
"""

FAILING_BUILD = """\
broken_task:
  script: echo "about to fail"; exit 3
  always:
    bye_script: echo bye
"""

SLOW_BUILD = """\
slow_task:
  script: sleep 120
later_task:
  depends_on: slow
  script: echo never
"""


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """The environment of a child: no CIRRUS_* variables, temporary files under ``tmp_path``."""
    env = child_environment()
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Process:
    """A ``cirrus`` subprocess in its own session, output captured in files."""

    def __init__(self, tmp_path: Path, label: str, args: list[str]) -> None:
        self.stdout_path = tmp_path / f"{label}.stdout"
        self.stderr_path = tmp_path / f"{label}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(CIRRUS), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=clean_environment(tmp_path),
                cwd=tmp_path,
                start_new_session=True,
            )

    def stdout(self) -> str:
        """What the process wrote to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        """What the process wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Whether the process has not exited."""
        return self.process.poll() is None

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the exit code; kill the session if it does not exit in time."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # What it said last tells why it did not stop (a request, a task, the store).
            dump_stacks(self)
            tail = "\n".join(self.stderr().splitlines()[-60:])
            message = f"still running {timeout}s after SIGTERM; stderr:\n{tail}"
            raise AssertionError(message) from None
        finally:
            self.kill_session()

    def kill_session(self) -> None:
        """Kill whatever is left in the process's session."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def dump_stacks(process: Process) -> None:
    """Ask a stuck controller for its threads' stacks (SIGUSR1: faulthandler) before it is
    killed, so that its stderr says where it waits."""
    # (A worker has no such handler: SIGUSR1 ends it, as the kill that follows would.)
    if process.alive():
        with contextlib.suppress(ProcessLookupError):
            process.process.send_signal(signal.SIGUSR1)
        time.sleep(1.0)  # the dump is written by the process itself


@dataclass
class Controller:
    """A running ``cirrus controller run`` and what it printed on start."""

    process: Process
    url: str
    registration_token: str
    admin_token: str


def start_controller(tmp_path: Path, database: Path, *extra: str) -> tuple[Process, str]:
    """Start a controller on a free port; return it and its URL once it listens."""
    process = Process(
        tmp_path,
        "controller-" + uuid.uuid4().hex[:6],
        [
            "controller",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--database",
            f"sqlite:///{database}",
            *extra,
        ],
    )

    def listening() -> str | None:
        if not process.alive():
            raise AssertionError(f"controller exited: {process.stderr()}")
        for line in process.stdout().splitlines():
            if line.startswith("controller listening on "):
                return line.split()[-1]
        return None

    try:
        url = wait_for(listening, START_TIMEOUT, "the controller to listen")
    except BaseException:
        process.kill_session()
        raise
    return process, url


def printed_token(output: str, prefix: str) -> str:
    """The token printed on the line starting with ``prefix``."""
    for line in output.splitlines():
        if line.startswith(prefix):
            return line.split()[-1]
    raise AssertionError(f"no {prefix!r} line in {output!r}")


def cli(
    tmp_path: Path, *args: str, token: str | None = None, timeout: float = BUILD_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run a user command to its end."""
    env = clean_environment(tmp_path)
    if token is not None:
        env["CIRRUS_TOKEN"] = token
    return subprocess.run(
        [str(CIRRUS), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Controller, str]]:
    """A controller with a tmp SQLite database and one worker polling it."""
    tmp_path = tmp_path_factory.mktemp("stack")
    process, url = start_controller(tmp_path, tmp_path / "controller.db")
    output = process.stdout()
    controller = Controller(
        process,
        url,
        printed_token(output, "registration token"),
        printed_token(output, "admin token"),
    )
    worker_name = "cli-" + uuid.uuid4().hex[:8]
    worker = Process(
        tmp_path,
        "worker",
        [
            "worker",
            "run",
            "--name",
            worker_name,
            "--token",
            controller.registration_token,
            "--rpc-endpoint",
            url,
        ],
    )
    try:
        yield controller, worker_name
    finally:
        worker_code = worker.terminate()
        controller_code = process.terminate()
        assert (worker_code, controller_code) == (0, 0), worker.stderr() + process.stderr()


@pytest.fixture
def env(stack: tuple[Controller, str], tmp_path: Path) -> tuple[Controller, str, Path]:
    """The running stack and a directory for this test's files."""
    return stack[0], stack[1], tmp_path


def submit(
    controller: Controller, tmp_path: Path, text: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    """``cirrus build submit`` of ``text`` against the test controller."""
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.cirrus.yml"
    path.write_text(text)
    return cli(
        tmp_path,
        "build",
        "submit",
        str(path),
        "--controller",
        controller.url,
        *flags,
        token=controller.admin_token,
    )


def build_json(controller: Controller, tmp_path: Path, build_id: str) -> dict[str, Any]:
    """``cirrus build status ID --json``."""
    result = cli(
        tmp_path,
        "build",
        "status",
        build_id,
        "--controller",
        controller.url,
        "--json",
        token=controller.admin_token,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_followed_build_that_completes_exits_0_and_prints_its_logs(
    env: tuple[Controller, str, Path],
) -> None:
    controller, _, tmp_path = env
    result = submit(controller, tmp_path, PASSING_BUILD, "--follow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "greet:say | hello from the greet task" in result.stdout
    assert "after:main | after greet" in result.stdout
    assert "greet (task " in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].endswith(": COMPLETED")


def test_a_followed_build_that_fails_exits_1_and_shows_the_scripts_exit_status(
    env: tuple[Controller, str, Path],
) -> None:
    controller, _, tmp_path = env
    result = submit(controller, tmp_path, FAILING_BUILD, "--follow")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "broken:main | about to fail" in result.stdout
    assert "broken:main FAILED (exit status 3)" in result.stdout
    assert "broken:bye | bye" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].endswith(": FAILED")


def test_build_status_json_is_the_documented_build(env: tuple[Controller, str, Path]) -> None:
    controller, _, tmp_path = env
    submitted = submit(controller, tmp_path, PASSING_BUILD, "--json")
    assert submitted.returncode == 0, submitted.stderr
    build = json.loads(submitted.stdout)
    assert set(build) >= {"id", "status", "tasks"}
    assert [task["name"] for task in build["tasks"]] == ["greet", "after"]
    final = wait_for(
        lambda: (
            (doc := build_json(controller, tmp_path, build["id"]))["status"] == "COMPLETED" and doc
        ),
        BUILD_TIMEOUT,
        "the build to complete",
    )
    assert final["id"] == build["id"]
    assert [set(task) >= {"id", "name", "status"} for task in final["tasks"]] == [True, True]
    assert {task["status"] for task in final["tasks"]} == {"COMPLETED"}


NO_SOURCE = "no source to clone: the task has no CIRRUS_REPO_CLONE_URL\n"
# The worker ends a failed script's log with its exit status (the wire has no field for it).
FAILED_LOG = "about to fail\nexit status 3\n"


def test_task_logs_print_one_commands_log_or_every_command_as_json(
    env: tuple[Controller, str, Path],
) -> None:
    controller, _, tmp_path = env
    followed = submit(controller, tmp_path, FAILING_BUILD, "--follow", "--json")
    assert followed.returncode == 1, followed.stderr
    task_id = json.loads(followed.stdout)["tasks"][0]["id"]
    common = ("--controller", controller.url)

    raw = cli(tmp_path, "task", "logs", task_id, "main", *common, token=controller.admin_token)
    assert (raw.returncode, raw.stdout) == (0, FAILED_LOG), raw.stderr

    as_json = cli(
        tmp_path, "task", "logs", task_id, *common, "--json", token=controller.admin_token
    )
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    logs = {c["name"]: (c["status"], c["log"]) for c in document["commands"]}
    # The automatic clone comes first; this build (outside git) has no source to fetch.
    assert logs == {
        "clone": ("COMPLETED", NO_SOURCE),
        "main": ("FAILED", FAILED_LOG),
        "bye": ("COMPLETED", "bye\n"),
    }

    followed_logs = cli(
        tmp_path, "task", "logs", task_id, *common, "--follow", token=controller.admin_token
    )
    assert followed_logs.returncode == 0, followed_logs.stderr
    assert followed_logs.stdout.splitlines() == [
        f"clone | {NO_SOURCE.strip()}",
        "main | about to fail",
        "main | exit status 3",
        "bye | bye",
    ]


def test_task_cancel_aborts_a_waiting_and_a_running_task(
    env: tuple[Controller, str, Path],
) -> None:
    controller, _, tmp_path = env
    submitted = submit(controller, tmp_path, SLOW_BUILD, "--json")
    build = json.loads(submitted.stdout)
    slow, later = (task["id"] for task in build["tasks"])
    common = ("--controller", controller.url, "--json")
    wait_for(
        lambda: build_json(controller, tmp_path, build["id"])["tasks"][0]["status"] == "EXECUTING",
        BUILD_TIMEOUT,
        "the slow task to run",
    )

    waiting = cli(tmp_path, "task", "cancel", later, *common, token=controller.admin_token)
    assert waiting.returncode == 0, waiting.stderr
    assert json.loads(waiting.stdout) == {"id": later, "status": "ABORTED"}

    running = cli(tmp_path, "task", "cancel", slow, *common, token=controller.admin_token)
    assert running.returncode == 0, running.stderr
    assert json.loads(running.stdout)["id"] == slow
    final = wait_for(
        lambda: (
            (doc := build_json(controller, tmp_path, build["id"]))["status"] == "ABORTED" and doc
        ),
        BUILD_TIMEOUT,
        "the build to be aborted",
    )
    assert [task["status"] for task in final["tasks"]] == ["ABORTED", "ABORTED"]


def test_workers_list_json_shows_the_polling_worker(env: tuple[Controller, str, Path]) -> None:
    controller, worker_name, tmp_path = env

    def listed() -> dict[str, Any] | None:
        result = cli(
            tmp_path,
            "workers",
            "list",
            "--controller",
            controller.url,
            "--json",
            token=controller.admin_token,
        )
        assert result.returncode == 0, result.stderr
        return next((w for w in json.loads(result.stdout) if w["name"] == worker_name), None)

    worker = wait_for(listed, START_TIMEOUT, "the worker to register")
    assert set(worker) >= {
        "name",
        "labels",
        "resourcesTotal",
        "resourcesInUse",
        "runningTasks",
        "disabled",
        "online",
        "lastSeen",
    }
    assert worker["labels"]["name"] == worker_name
    assert worker["online"] is True
    assert worker["disabled"] is False


def test_a_config_the_controller_refuses_is_exit_1_with_its_error_on_one_line(
    env: tuple[Controller, str, Path],
) -> None:
    controller, _, tmp_path = env
    result = submit(controller, tmp_path, "task:\n  b_script: x\n  b_background_script: y\n")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert 'duplicate command name "b"' in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_admin_token_is_exit_1_on_one_line(env: tuple[Controller, str, Path]) -> None:
    controller, _, tmp_path = env
    result = cli(tmp_path, "workers", "list", "--controller", controller.url, token="not-the-token")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "admin token" in result.stderr


def test_an_unknown_build_is_exit_1(env: tuple[Controller, str, Path]) -> None:
    controller, _, tmp_path = env
    result = cli(
        tmp_path,
        "build",
        "status",
        "999999",
        "--controller",
        controller.url,
        token=controller.admin_token,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1


def test_an_unreachable_controller_is_exit_1_on_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "build", "status", "1", "--controller", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.startswith("cirrus: cannot reach controller http://127.0.0.1:9")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--listen", "nowhere"], "--listen"),
        (["--listen", "127.0.0.1:70000"], "--listen"),
        (["--database", "postgresql+psycopg://ci:secret@127.0.0.1:5432/ci"], "--database"),
        (["--database", "mysql://localhost/ci"], "--database"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_controller_flags_are_exit_2_on_one_line(
    tmp_path: Path, args: list[str], named: str
) -> None:
    result = cli(tmp_path, "controller", "run", *args, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert named in result.stderr


def test_generated_tokens_are_printed_once_and_kept_by_the_database(tmp_path: Path) -> None:
    database = tmp_path / "kept.db"
    first, url = start_controller(tmp_path, database)
    admin = printed_token(first.stdout(), "admin token")
    printed_token(first.stdout(), "registration token")
    assert first.terminate() == 0

    second, url = start_controller(tmp_path, database)
    try:
        assert "token" not in second.stdout()
        result = cli(tmp_path, "workers", "list", "--controller", url, "--json", token=admin)
        assert (result.returncode, json.loads(result.stdout or "null")) == (0, []), result.stderr
    finally:
        assert second.terminate() == 0


def test_a_worker_restarted_after_its_sigterm_drain_gets_tasks_an_operators_pause_lasts(
    tmp_path: Path,
) -> None:
    controller_process, url = start_controller(tmp_path, tmp_path / "restart.db")
    output = controller_process.stdout()
    registration = printed_token(output, "registration token")
    admin = printed_token(output, "admin token")
    name = "restarted-" + uuid.uuid4().hex[:6]
    worker_flags = ["--name", name, "--token", registration, "--rpc-endpoint", url]

    def listed() -> dict[str, Any] | None:
        result = cli(tmp_path, "workers", "list", "--controller", url, "--json", token=admin)
        assert result.returncode == 0, result.stderr
        return next((w for w in json.loads(result.stdout) if w["name"] == name), None)

    def worker_process(label: str) -> Process:
        return Process(tmp_path, label, ["worker", "run", *worker_flags])

    try:
        first = worker_process("worker-1")
        wait_for(listed, START_TIMEOUT, "the worker to register")
        assert first.terminate() == 0, first.stderr()  # drains: UpdateStatus disabled=true
        drained = listed()
        assert drained is not None
        assert drained["disabled"] is True

        second = worker_process("worker-2")
        try:
            followed = submit(Controller(controller_process, url, registration, admin), tmp_path,
                              "task:\n  script: echo after the restart\n", "--follow")  # fmt: skip
            assert followed.returncode == 0, followed.stdout + followed.stderr + second.stderr()
            assert "after the restart" in followed.stdout
            paused = cli(tmp_path, "worker", "pause", *worker_flags)
            assert paused.returncode == 0, paused.stderr
        finally:
            assert second.terminate() == 0, second.stderr()

        third = worker_process("worker-3")
        try:
            wait_for(lambda: "registered with" in third.stderr(), START_TIMEOUT, "a Register")
            still = listed()
            assert still is not None
            assert still["disabled"] is True
        finally:
            assert third.terminate() == 0, third.stderr()
    finally:
        assert controller_process.terminate() == 0, controller_process.stderr()
