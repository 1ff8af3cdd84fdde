"""Black-box tests of ``cirrus worker run`` with Tart and Vetu tasks, on the simulated tools.

The real worker runs against the fake controller with the ``tart``/``vetu`` simulators first on
its ``PATH``: each simulated VM is a real sshd on a loopback address, letting in the test's
guest user. The ``simulator`` fixture fails a test that leaves a simulator, sshd or guest
process behind; each test also checks that no VM directory is left once the worker exited.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.test_worker_run import (
    CIRRUS,
    WorkerProcess,
    reported_statuses,
    task_stopped,
)
from tests.integration.vm.conftest import Simulator
from tests.integration.vm.conftest import simulator as simulator

pytestmark = pytest.mark.integration

TASK_TIMEOUT = 90
# Where the worker's VM factories make the task's working directory (adapters.vm.instance).
GUEST_WORKING_DIR = Path("/tmp/cirrus-ci")
# The worker's state directory override (app.worker.vm_factories).
STATE_DIR_ENV = "CIRRUS_WORKER_STATE_DIR"


class VmWorkerProcess(WorkerProcess):
    """``cirrus worker run`` with the simulators on ``PATH`` and a private state directory."""

    def __init__(self, tmp_path: Path, controller: FakeController, sim: Simulator) -> None:
        super().__init__(tmp_path, controller)
        self.sim = sim

    def start(self, config: dict[str, Any] | None = None, *args: str) -> WorkerProcess:
        """Write the config file and start the worker with the simulators' environment."""
        config_path = self.tmp_path / "worker.yml"
        config_path.write_text(yaml.safe_dump(config if config is not None else self.config()))
        work_tmp = self.tmp_path / "tmp"
        work_tmp.mkdir(exist_ok=True)
        env = dict(self.sim.env)
        env["TMPDIR"] = str(work_tmp)
        env[STATE_DIR_ENV] = str(self.tmp_path / "state")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(CIRRUS), "worker", "run", "-f", str(config_path), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        return self

    def stop_and_check_clean(self) -> None:
        """SIGTERM (drain), expect exit 0 and no VM of either tool left on disk."""
        self.send(signal.SIGTERM)
        assert self.wait_exit(60) == 0, self.stderr()[-3000:]
        assert self.sim.vms("tart") == []
        assert self.sim.vms("vetu") == []
        assert "Traceback" not in self.output()
        # Loading the VM code (asyncssh) must not show users a library's deprecation warning.
        assert "Warning" not in self.stderr(), self.stderr()[-3000:]


@pytest.fixture
def vm_worker(
    tmp_path: Path, fake_controller: FakeController, simulator: Simulator
) -> Iterator[VmWorkerProcess]:
    """A not yet started VM worker bound to the fake controller; killed at teardown."""
    if not CIRRUS.exists():
        pytest.fail(f"console script {CIRRUS} is not installed")
    process = VmWorkerProcess(tmp_path, fake_controller, simulator)
    fake_controller.give_up_check = process.exited_early
    try:
        yield process
    finally:
        fake_controller.give_up_check = None
        process.kill()
        shutil.rmtree(GUEST_WORKING_DIR, ignore_errors=True)


def vm_isolation(sim: Simulator, tool: str, image: str = "ghcr.io/cirruslabs/test:latest") -> Any:
    """A Tart or Vetu isolation the simulated VMs let in."""
    return {tool: {"image": image, "user": sim.user.name, "password": sim.user.password}}


def vm_task(isolation: Any, *commands: dict[str, Any], **fields: Any) -> FakeTask:
    """A VM task with a unique id."""
    return FakeTask("vm-" + uuid.uuid4().hex[:10], list(commands), isolation=isolation, **fields)


def vm_id_of(task: FakeTask) -> str:
    """The ``CIRRUS_VM_ID`` the task's ``vmid`` command printed."""
    for line in task.log_text("vmid").splitlines():
        if line.startswith("vm="):
            return line.removeprefix("vm=")
    raise AssertionError(f"no vm= line in {task.log_text()!r}")


def standby_reported(controller: FakeController) -> list[list[dict[str, Any]]]:
    """``availableStandbyInstancesInformation`` of every successful poll, in order."""
    return [
        call.body.get("availableStandbyInstancesInformation") or []
        for call in controller.successful_calls("Poll")
        if isinstance(call.body, dict)
    ]


def test_a_tart_and_a_vetu_task_run_their_scripts_in_their_vms(
    vm_worker: VmWorkerProcess, fake_controller: FakeController, simulator: Simulator
) -> None:
    tasks = [
        fake_controller.queue_task(
            vm_task(
                vm_isolation(simulator, tool),
                script("vmid", 'echo "vm=$CIRRUS_VM_ID"', f"echo hello-from-{tool}"),
                script("broken", "exit 7"),
                script("always", "echo always-ran", behaviour="ALWAYS"),
            )
        )
        for tool in ("tart", "vetu")
    ]
    vm_worker.start()
    for tool, task in zip(("tart", "vetu"), tasks, strict=True):
        done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
        assert done.failures == []
        assert done.started == 1
        assert done.stopped == 1
        assert reported_statuses(done) == {
            "vmid": "COMPLETED",
            "broken": "FAILED",
            "always": "COMPLETED",
        }
        assert vm_id_of(done).startswith(f"cirrus-cli-{task.task_id}-")
        assert f"hello-from-{tool}" in done.log_text("vmid")
        assert "always-ran" in done.log_text("always")
    assert simulator.vms("tart") == []
    assert simulator.vms("vetu") == []
    vm_worker.stop_and_check_clean()


def test_a_standby_is_warmed_taken_by_an_equal_task_and_given_up_for_a_different_one(
    vm_worker: VmWorkerProcess, fake_controller: FakeController, simulator: Simulator
) -> None:
    warm_marker = simulator.guest_dir / "warmed"
    isolation = vm_isolation(simulator, "tart")
    config = vm_worker.config(
        standby={
            "isolation": isolation,
            "resources": {"slots": 1},
            "warmup": {"script": f"echo warm > {warm_marker}", "timeout": "60s"},
        }
    )
    vm_worker.start(config)
    fake_controller.wait_for(
        lambda: any(standby_reported(fake_controller)), TASK_TIMEOUT, "a warm standby reported"
    )
    reported = next(info for info in standby_reported(fake_controller) if info)
    assert len(reported) == 1
    assert reported[0]["parameters"]["isolation"]["tart"]["image"] == isolation["tart"]["image"]
    assert warm_marker.read_text().strip() == "warm"
    standby_vms = simulator.vms("tart")
    assert len(standby_vms) == 1
    assert standby_vms[0].startswith("cirrus-cli-standby-")

    hit = fake_controller.queue_task(
        vm_task(isolation, script("vmid", 'echo "vm=$CIRRUS_VM_ID"'), resources_to_use={"slots": 1})
    )
    done = task_stopped(fake_controller, hit.task_id, TASK_TIMEOUT)
    assert done.failures == []
    assert reported_statuses(done) == {"vmid": "COMPLETED"}
    assert vm_id_of(done) == standby_vms[0]

    # Once the task is gone a new standby is warmed; a task unlike it makes it go.
    fake_controller.wait_for(
        lambda: len(simulator.vms("tart")) == 1 and simulator.vms("tart") != standby_vms,
        TASK_TIMEOUT,
        "a second standby",
    )
    miss = fake_controller.queue_task(
        vm_task(vm_isolation(simulator, "vetu"), script("vmid", 'echo "vm=$CIRRUS_VM_ID"'))
    )
    done = task_stopped(fake_controller, miss.task_id, TASK_TIMEOUT)
    assert done.failures == []
    assert vm_id_of(done).startswith(f"cirrus-cli-{miss.task_id}-")
    vm_worker.stop_and_check_clean()


def test_a_resource_modifier_argument_reaches_vetu_run_and_its_error_fails_the_task(
    vm_worker: VmWorkerProcess, fake_controller: FakeController, simulator: Simulator
) -> None:
    config = vm_worker.config(
        resources={"gpu": 1},
        **{
            "resource-modifiers": [
                {"match": {"gpu": 1}, "append": {"run": ["--non-existent-argument-expected"]}}
            ]
        },
    )
    task = fake_controller.queue_task(
        vm_task(
            vm_isolation(simulator, "vetu"),
            script("main", "echo never"),
            resources_to_use={"gpu": 1},
        )
    )
    vm_worker.start(config)
    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert done.started == 0
    assert len(done.failures) == 1
    assert "Unknown option '--non-existent-argument-expected'" in done.failures[0]
    assert done.stopped == 1
    runs = [argv for argv in simulator.argvs("vetu") if argv[0] == "run"]
    assert len(runs) == 1
    assert "--non-existent-argument-expected" in runs[0]
    # The modifier is free again: the same task shape fails the same way, not without the flag.
    again = fake_controller.queue_task(
        vm_task(
            vm_isolation(simulator, "vetu"), script("main", "true"), resources_to_use={"gpu": 1}
        )
    )
    done = task_stopped(fake_controller, again.task_id, TASK_TIMEOUT)
    assert "Unknown option '--non-existent-argument-expected'" in done.failures[0]
    assert json.dumps(simulator.argvs("vetu")).count("--non-existent-argument-expected") == 2
    vm_worker.stop_and_check_clean()
