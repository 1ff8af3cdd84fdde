"""The ``container`` isolation against real podman: scripts, status, files, limits, cleanup.

Every container a test creates carries a task label unique to that test and is force-removed at
teardown, whatever the test's outcome. Containers run with ``--network none``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psutil
import pytest

from adapters.container import (
    PID_LABEL,
    TASK_LABEL,
    WORKING_DIR,
    ContainerEngine,
    ContainerInstance,
    ContainerInstanceFactory,
    choose_engine,
    remove_leftovers,
)
from domain.errors import InstanceError
from domain.isolation import ContainerIsolation, ContainerVolume
from tests.integration.container_image import (
    TEST_IMAGE,
    container_exists,
    containers_labelled,
    inspect,
    podman,
    remove_labelled,
    require_podman,
    start_sleeper,
)

pytestmark = pytest.mark.integration

GRACE_SECONDS = 1.0


class RecordingSink:
    """Keeps every chunk it is given."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


async def wait_until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Poll ``condition`` until it holds, failing after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


def processes_in(container: str) -> list[str]:
    """The command lines of the processes running in ``container``."""
    listed = podman("top", container, "args")
    return [line.strip() for line in listed.stdout.splitlines()[1:]]


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def task_id() -> Iterator[str]:
    """A task id unique to the test; its containers are force-removed at teardown."""
    require_podman()
    ident = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield ident
    finally:
        remove_labelled(f"{TASK_LABEL}={ident}")


@pytest.fixture
def factory(tmp_path: Path) -> ContainerInstanceFactory:
    return ContainerInstanceFactory(
        "podman", grace_seconds=GRACE_SECONDS, network="none", base_dir=str(tmp_path)
    )


@pytest.fixture
async def instance(
    factory: ContainerInstanceFactory, task_id: str
) -> AsyncIterator[ContainerInstance]:
    created = await factory.create(task_id, ContainerIsolation(image=TEST_IMAGE))
    try:
        yield created
    finally:
        await created.close()


async def test_a_script_runs_inside_the_container_and_its_output_arrives(
    instance: ContainerInstance,
) -> None:
    sink = RecordingSink()
    script = "echo out\necho err >&2\ncat /proc/1/cmdline | tr '\\0' ' '; echo\n"
    assert await instance.run_script(script, {}, sink) == 0
    lines = sink.data.decode().splitlines()
    assert lines[:2] == ["out", "err"]
    # PID 1 of the script's world is the container's init running the sleeping entrypoint.
    assert "sleep infinity" in lines[2]


async def test_the_exit_status_of_the_script_is_returned(instance: ContainerInstance) -> None:
    assert await instance.run_script("exit 3", {}, RecordingSink()) == 3


async def test_the_script_stops_at_the_first_failing_line(instance: ContainerInstance) -> None:
    sink = RecordingSink()
    assert await instance.run_script("echo before\nfalse; echo never\n", {}, sink) == 1
    assert sink.data == b"before\n"


async def test_death_by_signal_is_128_plus_the_signal_number(
    instance: ContainerInstance,
) -> None:
    assert await instance.run_script("kill -TERM $$", {}, RecordingSink()) == 143


async def test_the_environment_reaches_the_script_without_showing_on_a_command_line(
    instance: ContainerInstance,
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    env = {"GREETING": "hello 'quoted' world", "MULTI": "a\nb", "SECRET": secret}
    script = 'echo "$GREETING"\necho "$MULTI"\necho started\nsleep 1\necho "${#SECRET}"\n'
    sink = RecordingSink()
    running = asyncio.create_task(instance.run_script(script, env, sink))
    await wait_until(lambda: b"started" in sink.data)
    command_lines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not [line for line in command_lines if secret in line]
    assert await running == 0
    assert sink.data.decode().splitlines() == [
        "hello 'quoted' world",
        "a",
        "b",
        "started",
        str(len(secret)),
    ]


async def test_the_base_environment_is_the_containers_own(
    instance: ContainerInstance,
) -> None:
    base = instance.base_environment()
    assert base["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    sink = RecordingSink()
    assert await instance.run_script('echo "$PATH"', {}, sink) == 0
    assert sink.data.decode().strip() == base["PATH"]


async def test_the_working_dir_is_the_cwd_and_written_files_are_visible(
    instance: ContainerInstance, tmp_path: Path
) -> None:
    assert instance.working_directory == WORKING_DIR
    await instance.write_file("sub/dir/note.txt", b"from the worker\n")
    await instance.write_file(f"{WORKING_DIR}/absolute.txt", b"absolute\n")
    sink = RecordingSink()
    script = "pwd\ncat sub/dir/note.txt absolute.txt\necho made here > made.txt\n"
    assert await instance.run_script(script, {}, sink) == 0
    assert sink.data.decode().splitlines() == [WORKING_DIR, "from the worker", "absolute"]
    host_working = Path(instance.host_directory, "working-dir")
    assert (host_working / "made.txt").read_text() == "made here\n"
    assert (host_working / "sub/dir/note.txt").read_bytes() == b"from the worker\n"


async def test_write_file_does_not_follow_a_planted_symlink_out_of_the_container(
    instance: ContainerInstance, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # Inside the container this path does not exist; on the host it would be `outside`.
    assert await instance.run_script(f"ln -s {outside} escape", {}, RecordingSink()) == 0
    with pytest.raises(InstanceError):
        await instance.write_file("escape/planted.txt", b"x")
    assert list(outside.iterdir()) == []


async def test_a_read_only_volume_cannot_be_written_and_a_read_write_one_can(
    factory: ContainerInstanceFactory, task_id: str, tmp_path: Path
) -> None:
    read_only, read_write = tmp_path / "ro", tmp_path / "missing" / "rw"
    read_only.mkdir()
    (read_only / "given.txt").write_text("given\n")
    isolation = ContainerIsolation(
        image=TEST_IMAGE,
        volumes=(
            ContainerVolume(str(read_only), "/mnt/ro", read_only=True),
            ContainerVolume(str(read_write), "/mnt/rw"),
        ),
    )
    created = await factory.create(task_id, isolation)
    try:
        sink = RecordingSink()
        assert await created.run_script("cat /mnt/ro/given.txt", {}, sink) == 0
        assert sink.data == b"given\n"
        assert await created.run_script("touch /mnt/ro/new", {}, RecordingSink()) != 0
        assert await created.run_script("echo rw > /mnt/rw/new", {}, RecordingSink()) == 0
    finally:
        await created.close()
    assert list(read_only.iterdir()) == [read_only / "given.txt"]
    assert (read_write / "new").read_text() == "rw\n"


async def test_cpu_and_memory_limits_show_in_the_container_configuration(
    factory: ContainerInstanceFactory, task_id: str
) -> None:
    created = await factory.create(task_id, ContainerIsolation(TEST_IMAGE, cpu=1.5, memory=64))
    try:
        host_config = inspect(created.container)["HostConfig"]
        assert host_config["NanoCpus"] == 1_500_000_000
        assert host_config["Memory"] == 64 * 1024 * 1024
        labels = inspect(created.container)["Config"]["Labels"]
        assert labels[TASK_LABEL] == task_id
        assert labels[PID_LABEL] == str(os.getpid())
    finally:
        await created.close()


async def test_an_unknown_image_fails_creation_and_leaves_nothing(
    factory: ContainerInstanceFactory, task_id: str, tmp_path: Path
) -> None:
    isolation = ContainerIsolation(image=f"localhost/cirrus-no-such-image-{task_id}:latest")
    with pytest.raises(InstanceError) as raised:
        await factory.create(task_id, isolation)
    assert str(raised.value)
    assert "\n" not in str(raised.value)
    assert containers_labelled(f"{TASK_LABEL}={task_id}") == []
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


async def test_cancelling_interrupts_the_script_inside_the_container(
    task_id: str, tmp_path: Path
) -> None:
    patient = ContainerInstanceFactory(
        "podman", grace_seconds=10.0, network="none", base_dir=str(tmp_path)
    )
    created = await patient.create(task_id, ContainerIsolation(image=TEST_IMAGE))
    try:
        sink = RecordingSink()
        running = asyncio.create_task(created.run_script("echo started\nsleep 1001\n", {}, sink))
        await wait_until(lambda: b"started" in sink.data)
        started = time.monotonic()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        # SIGINT ends the sleep at once: nobody waits for the 10 s grace period.
        assert time.monotonic() - started < 5.0
        assert not [line for line in processes_in(created.container) if "1001" in line]
    finally:
        await created.close()


async def test_a_script_ignoring_sigint_is_killed_after_the_grace_period(
    instance: ContainerInstance,
) -> None:
    sink = RecordingSink()
    # `|| :` because the interrupted sleep fails, which would end a `sh -e` script.
    script = "trap 'echo interrupted' INT\necho started\nwhile :; do sleep 1002 || :; done\n"
    running = asyncio.create_task(instance.run_script(script, {}, sink))
    await wait_until(lambda: b"started" in sink.data)
    started = time.monotonic()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    elapsed = time.monotonic() - started
    assert GRACE_SECONDS * 0.9 <= elapsed < GRACE_SECONDS + 5.0
    assert b"interrupted" in sink.data
    assert not [line for line in processes_in(instance.container) if "1002" in line]


async def test_what_a_script_leaves_running_is_killed_when_it_ends(
    instance: ContainerInstance,
) -> None:
    started = time.monotonic()
    assert await instance.run_script("sleep 1003 &\necho done\n", {}, RecordingSink()) == 0
    assert time.monotonic() - started < 5.0
    assert not [line for line in processes_in(instance.container) if "1003" in line]


async def test_a_background_script_streams_and_stops_inside_the_container(
    instance: ContainerInstance,
) -> None:
    sink = RecordingSink()
    handle = await instance.start_background("echo started\nsleep 1004\n", {}, sink)
    await wait_until(lambda: b"started" in sink.data)
    assert [line for line in processes_in(instance.container) if "1004" in line]
    await handle.stop()
    assert handle.done
    assert not [line for line in processes_in(instance.container) if "1004" in line]


async def test_close_kills_background_scripts_and_removes_container_and_directory(
    factory: ContainerInstanceFactory, task_id: str
) -> None:
    created = await factory.create(task_id, ContainerIsolation(image=TEST_IMAGE))
    sink = RecordingSink()
    handle = await created.start_background("echo started\nsleep 1005\n", {}, sink)
    await wait_until(lambda: b"started" in sink.data)
    assert container_exists(created.container)
    await created.close()
    assert handle.done
    assert not container_exists(created.container)
    assert containers_labelled(f"{TASK_LABEL}={task_id}") == []
    assert not await asyncio.to_thread(Path(created.host_directory).exists)
    await created.close()  # idempotent
    with pytest.raises(InstanceError):
        await created.run_script("true", {}, RecordingSink())


async def test_remove_leftovers_removes_only_labelled_containers_of_dead_workers(
    task_id: str,
) -> None:
    dead, alive = dead_pid(), os.getpid()
    orphan = start_sleeper(f"{task_id}-orphan", {TASK_LABEL: task_id, PID_LABEL: str(dead)})
    living = start_sleeper(f"{task_id}-living", {TASK_LABEL: task_id, PID_LABEL: str(alive)})
    stranger_name = f"{task_id}-stranger"
    try:
        stranger = start_sleeper(stranger_name, {PID_LABEL: str(dead)})
        removed = await remove_leftovers("podman", psutil.pid_exists)
        # A worker that another test starts at this moment runs the same clean-up, and may
        # remove the orphan first: either way it must be gone.
        assert orphan in removed or not container_exists(orphan)
        assert living not in removed
        assert stranger not in removed
        assert not container_exists(orphan)
        assert container_exists(living)
        assert container_exists(stranger)
    finally:
        podman("rm", "--force", "--time", "0", stranger_name, check=False)


def test_the_backend_variable_or_what_is_installed_chooses_the_engine(tmp_path: Path) -> None:
    both, docker_only = tmp_path / "both", tmp_path / "docker-only"
    for directory, names in ((both, ("docker", "podman")), (docker_only, ("docker",))):
        directory.mkdir()
        for name in names:
            (directory / name).write_text("#!/bin/sh\n")
            (directory / name).chmod(0o755)
    assert choose_engine(environ={"PATH": str(both)}) == "podman"
    assert choose_engine(environ={"PATH": str(docker_only)}) == "docker"
    variable = {"PATH": str(both), "CIRRUS_CONTAINER_BACKEND": "docker"}
    assert choose_engine(environ=variable) == "docker"
    assert choose_engine("podman", environ={"PATH": str(docker_only)}) == "podman"
    with pytest.raises(InstanceError):
        choose_engine(environ={"PATH": str(tmp_path / "empty")})
    with pytest.raises(InstanceError):
        choose_engine(environ={"PATH": str(both), "CIRRUS_CONTAINER_BACKEND": "lxc"})


async def test_engine_errors_carry_the_first_stderr_line() -> None:
    require_podman()
    engine = ContainerEngine("podman")
    with pytest.raises(InstanceError) as raised:
        await engine.run(["inspect", f"cirrus-no-such-container-{uuid.uuid4().hex}"])
    assert "no such" in str(raised.value).lower()
    assert "\n" not in str(raised.value)
