"""The ``none`` isolation against real processes: output, status, process groups, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psutil
import pytest

from adapters.host import HostInstance, HostInstanceFactory
from domain.errors import InstanceError

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")
PATH_ONLY = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


class RecordingSink:
    """Keeps every chunk it is given."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


class FailingSink:
    """Refuses every write, like a log upload that keeps failing."""

    async def write(self, data: bytes) -> None:
        raise RuntimeError("log upload failed")


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``condition`` until it holds, failing after ``within`` seconds.

    Also for deaths: a SIGKILLed process lingers for a moment before it turns into a zombie.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


async def settle(task: asyncio.Task[int], within: float = 10.0) -> None:
    """Wait for ``task`` to end without cancelling it if it does not (a hang fails, not hangs)."""
    done, _ = await asyncio.wait({task}, timeout=within)
    assert done, f"still running after {within} s"


def directory_facts(path: Path) -> tuple[int, list[Path]]:
    """The permission bits and the entries of a directory."""
    return stat.S_IMODE(path.stat().st_mode), list(path.iterdir())


def value_after(data: bytes, label: str) -> int:
    """The integer printed as ``<label> <n>`` on a line of ``data``."""
    for line in data.decode().splitlines():
        if line.startswith(label + " "):
            return int(line.split()[1])
    raise AssertionError(f"no {label!r} line in {data!r}")


def labels_seen(data: bytes) -> set[str]:
    """The first words of the complete lines of ``data``."""
    return {
        line.split()[0]
        for line in data.decode().splitlines(keepends=True)
        if line.strip() and line.endswith("\n")
    }


def live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies are dead already)."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def group_member_names(pgid: int) -> list[str]:
    """The program names of the running processes of group ``pgid``."""
    names = []
    for pid in live_group_members(pgid):
        with contextlib.suppress(psutil.NoSuchProcess):
            names.append(psutil.Process(pid).name())
    return names


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def groups() -> Iterator[list[int]]:
    """Process groups a test saw; killed at teardown so a failing test leaks nothing."""
    seen: list[int] = []
    yield seen
    for pgid in seen:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
async def instance(tmp_path: Path) -> AsyncIterator[HostInstance]:
    created = await HostInstanceFactory(str(tmp_path), grace_seconds=0.5).create("T1")
    try:
        yield created
    finally:
        await created.close()


async def test_output_reaches_the_sink_in_order_with_stderr_merged(
    instance: HostInstance,
) -> None:
    sink = RecordingSink()
    status = await instance.run_script(
        "echo out\necho err >&2\nfor i in 1 2 3; do echo line $i; done\n", PATH_ONLY, sink
    )
    assert status == 0
    assert sink.data == b"out\nerr\nline 1\nline 2\nline 3\n"


async def test_the_exit_status_of_the_script_is_returned(instance: HostInstance) -> None:
    assert await instance.run_script("exit 3", PATH_ONLY, RecordingSink()) == 3


async def test_the_script_stops_at_the_first_failing_line(instance: HostInstance) -> None:
    sink = RecordingSink()
    status = await instance.run_script("echo before\nfalse\necho never\n", PATH_ONLY, sink)
    assert status != 0
    assert sink.data == b"before\n"


async def test_death_by_signal_is_128_plus_the_signal_number(instance: HostInstance) -> None:
    assert await instance.run_script("kill -TERM $$", PATH_ONLY, RecordingSink()) == 143


async def test_the_environment_is_exactly_the_given_one_and_the_cwd_the_working_dir(
    instance: HostInstance,
) -> None:
    sink = RecordingSink()
    env = {**PATH_ONLY, "GREETING": "hello world"}
    script = 'echo "$GREETING"\necho "${HOME-unset}"\npwd -P\n'
    assert await instance.run_script(script, env, sink) == 0
    assert sink.data.decode().splitlines() == [
        "hello world",
        "unset",
        await asyncio.to_thread(os.path.realpath, instance.working_directory),
    ]


async def test_the_base_environment_is_a_copy_of_the_workers(instance: HostInstance) -> None:
    base = instance.base_environment()
    assert dict(base) == dict(os.environ)
    assert base is not os.environ


async def test_stdin_is_empty(instance: HostInstance) -> None:
    sink = RecordingSink()
    assert await instance.run_script("cat; echo done", PATH_ONLY, sink) == 0
    assert sink.data == b"done\n"


async def test_a_script_leaving_a_background_sleep_returns_promptly_and_leaks_nothing(
    instance: HostInstance, groups: list[int]
) -> None:
    sink = RecordingSink()
    script = "echo leader $$\nsleep 1000 &\necho sleeper $!\n"
    running = asyncio.create_task(instance.run_script(script, PATH_ONLY, sink))
    await wait_until(lambda: "leader" in labels_seen(sink.data))
    groups.append(value_after(sink.data, "leader"))
    started = time.monotonic()
    await settle(running)
    assert running.result() == 0
    assert time.monotonic() - started < 1.5
    sleeper = value_after(sink.data, "sleeper")
    await wait_until(lambda: not is_running(sleeper))
    await wait_until(lambda: live_group_members(groups[0]) == [], within=2)


async def test_a_process_that_escaped_the_session_cannot_hold_the_script_open(
    instance: HostInstance, tmp_path: Path
) -> None:
    marker = tmp_path / "escaped"
    # setsid leaves the script's process group but keeps the output pipe open.
    script = f"setsid sleep 1000 &\necho $! > {marker}\necho done\n"
    running = asyncio.create_task(instance.run_script(script, PATH_ONLY, RecordingSink()))
    started = time.monotonic()
    try:
        await settle(running)
        assert running.result() == 0
        assert time.monotonic() - started < 5
    finally:
        escaped = int(await asyncio.to_thread(marker.read_text))
        with contextlib.suppress(ProcessLookupError):
            os.kill(escaped, signal.SIGKILL)


async def test_a_script_that_closes_its_output_early_still_completes(
    instance: HostInstance,
) -> None:
    sink = RecordingSink()
    assert await instance.run_script("echo hi\nexec >&- 2>&-\nsleep 0.2\n", PATH_ONLY, sink) == 0
    assert sink.data == b"hi\n"


TREE_LABELS = ("leader", "child", "grandchild")
INT_IGNORING_TREE = """\
trap '' INT
sh -c 'sleep 1000 & echo grandchild $!; wait' &
echo child $!
echo leader $$
wait
"""


async def test_cancelling_kills_a_tree_that_ignores_sigint_after_the_grace(
    instance: HostInstance, groups: list[int]
) -> None:
    sink = RecordingSink()
    running = asyncio.create_task(instance.run_script(INT_IGNORING_TREE, PATH_ONLY, sink))
    await wait_until(lambda: set(TREE_LABELS) <= labels_seen(sink.data))
    leader = value_after(sink.data, "leader")
    groups.append(leader)
    tree = [leader, value_after(sink.data, "child"), value_after(sink.data, "grandchild")]
    assert all(is_running(pid) for pid in tree)

    started = time.monotonic()
    running.cancel()
    await settle(running)
    assert running.cancelled()
    elapsed = time.monotonic() - started

    # SIGINT was ignored, so only the SIGKILL after the 0.5 s grace ended the tree.
    assert 0.5 <= elapsed < 5
    await wait_until(lambda: not any(is_running(pid) for pid in tree), within=2)
    await wait_until(lambda: live_group_members(leader) == [], within=2)


async def test_cancelling_interrupts_a_plain_sleep_with_sigint_before_the_grace(
    tmp_path: Path, groups: list[int]
) -> None:
    created = await HostInstanceFactory(str(tmp_path), grace_seconds=30).create("T2")
    try:
        sink = RecordingSink()
        script = "echo leader $$\nsleep 1000\n"
        running = asyncio.create_task(created.run_script(script, PATH_ONLY, sink))
        await wait_until(lambda: "leader" in labels_seen(sink.data))
        groups.append(value_after(sink.data, "leader"))
        # A SIGINT that lands while the shell forks is lost by the forked child (it is caught
        # and then forgotten by exec): only SIGKILL helps then. Wait for sleep to be running.
        await wait_until(lambda: "sleep" in group_member_names(groups[0]))
        started = time.monotonic()
        running.cancel()
        await settle(running)
        assert running.cancelled()
        # Well before the 30 s grace: sleep died of the SIGINT.
        assert time.monotonic() - started < 10
        await wait_until(lambda: live_group_members(groups[0]) == [], within=2)
    finally:
        await created.close()


async def test_a_failing_sink_kills_the_script_and_raises(
    instance: HostInstance, tmp_path: Path, groups: list[int]
) -> None:
    marker = tmp_path / "leader"
    started = time.monotonic()
    script = f"echo $$ > {marker}\necho hi\nsleep 1000\n"
    running = asyncio.create_task(instance.run_script(script, PATH_ONLY, FailingSink()))
    try:
        await settle(running)
    finally:
        groups.append(int(await asyncio.to_thread(marker.read_text)))
    with pytest.raises(RuntimeError, match="log upload failed"):
        running.result()
    assert time.monotonic() - started < 5
    await wait_until(lambda: live_group_members(groups[0]) == [], within=2)


TICKER = "echo leader $$\ni=0\nwhile true; do echo tick $i; i=$((i+1)); sleep 0.02; done\n"


async def test_a_background_script_streams_output_until_stopped(
    instance: HostInstance, groups: list[int]
) -> None:
    sink = RecordingSink()
    handle = await instance.start_background(TICKER, PATH_ONLY, sink)
    await wait_until(lambda: b"tick 3\n" in sink.data)
    leader = value_after(sink.data, "leader")
    groups.append(leader)
    assert live_group_members(leader) != []

    async with asyncio.timeout(10):
        await handle.stop()
        await handle.stop()

    await wait_until(lambda: live_group_members(leader) == [], within=2)
    ticks = [line for line in sink.data.decode().splitlines() if line.startswith("tick")]
    assert ticks == [f"tick {i}" for i in range(len(ticks))]
    assert len(ticks) >= 4


async def test_closing_the_instance_stops_its_background_scripts(
    tmp_path: Path, groups: list[int]
) -> None:
    created = await HostInstanceFactory(str(tmp_path), grace_seconds=0.5).create("T3")
    sink = RecordingSink()
    handle = await created.start_background(TICKER, PATH_ONLY, sink)
    await wait_until(lambda: b"tick 1\n" in sink.data)
    groups.append(value_after(sink.data, "leader"))
    async with asyncio.timeout(10):
        await created.close()
    assert handle.done
    await wait_until(lambda: live_group_members(groups[0]) == [], within=2)


async def test_write_file_resolves_relative_paths_in_the_working_dir_and_keeps_absolute_ones(
    instance: HostInstance, tmp_path: Path
) -> None:
    await instance.write_file("nested/dir/a.txt", b"relative")
    absolute = tmp_path / "elsewhere" / "b.txt"
    await instance.write_file(str(absolute), b"absolute")
    relative = Path(instance.working_directory, "nested/dir/a.txt")
    assert await asyncio.to_thread(relative.read_bytes) == b"relative"
    assert await asyncio.to_thread(absolute.read_bytes) == b"absolute"


async def test_the_working_directory_is_fresh_private_and_named_after_the_task(
    tmp_path: Path,
) -> None:
    factory = HostInstanceFactory(str(tmp_path))
    first = await factory.create("task/42")
    second = await factory.create("task/42")
    try:
        for created in (first, second):
            path = Path(created.working_directory)
            assert path.parent == tmp_path
            assert path.name.startswith("cirrus-task-task_42-")
            assert await asyncio.to_thread(directory_facts, path) == (0o700, [])
        assert first.working_directory != second.working_directory
    finally:
        await first.close()
        await second.close()


async def test_close_removes_everything_and_is_idempotent(tmp_path: Path) -> None:
    created = await HostInstanceFactory(str(tmp_path)).create("T4")
    await created.write_file("ro/file", b"x")
    # Tasks leave read-only trees behind (Go's module cache does); close still removes them.
    assert await created.run_script("chmod 0555 ro", PATH_ONLY, RecordingSink()) == 0
    await created.close()
    await created.close()
    assert (await asyncio.to_thread(directory_facts, tmp_path))[1] == []
    with pytest.raises(InstanceError):
        await created.run_script("true", PATH_ONLY, RecordingSink())


async def test_a_missing_base_directory_is_an_instance_error(tmp_path: Path) -> None:
    with pytest.raises(InstanceError):
        await HostInstanceFactory(str(tmp_path / "missing")).create("T5")


MEMORY_PROBE = """
import asyncio, json, resource, sys
from adapters.host import HostInstanceFactory

class CountingSink:
    def __init__(self):
        self.count = 0
    async def write(self, data):
        self.count += len(data)

async def main(base):
    instance = await HostInstanceFactory(base).create("big")
    env = {"PATH": "/usr/bin:/bin"}
    try:
        warm = CountingSink()
        await instance.run_script("head -c 1000000 /dev/zero | tr '\\\\0' a", env, warm)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sink = CountingSink()
        status = await instance.run_script(
            "head -c 200000000 /dev/zero | tr '\\\\0' a", env, sink
        )
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        await instance.close()
    print(json.dumps({"status": status, "count": sink.count, "growth_kib": after - before}))

asyncio.run(main(sys.argv[1]))
"""


async def test_a_200_mb_output_streams_through_with_bounded_memory(tmp_path: Path) -> None:
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        MEMORY_PROBE,
        str(tmp_path),
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(probe.communicate(), timeout=300)
    assert probe.returncode == 0
    result = json.loads(stdout)
    assert result["status"] == 0
    assert result["count"] == 200_000_000
    assert result["growth_kib"] < 30 * 1024
