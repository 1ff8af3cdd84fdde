"""Black-box rules of ``cirrus worker run`` around isolations: policy first, metrics, clean-up.

The real worker runs against the fake controller with the Tart/Vetu simulators (and, where a
test needs it, recording ``podman``/``docker`` shims) first on its ``PATH``. A refused task must
never reach an isolation tool; standby hits and misses must show on ``/metrics``; a failed or
cancelled task must leave no VM, process, state entry or container behind.
"""

from __future__ import annotations

import json
import shutil
import socket
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.container_image import containers_labelled
from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.test_worker_container import PID_LABEL, TASK_LABEL, container_task
from tests.integration.test_worker_container import labelled_cleanup as labelled_cleanup
from tests.integration.test_worker_container import podman_ready as podman_ready
from tests.integration.test_worker_run import (
    WorkerProcess,
    first_call_at,
    reported_statuses,
    sleeps_of,
    task_calls,
    task_stopped,
)
from tests.integration.test_worker_run import sleep_marker as sleep_marker
from tests.integration.test_worker_run import worker as worker
from tests.integration.test_worker_vm import (
    TASK_TIMEOUT,
    VmWorkerProcess,
    standby_reported,
    vm_isolation,
    vm_task,
)
from tests.integration.test_worker_vm import vm_worker as vm_worker
from tests.integration.vm.conftest import Simulator, guest_processes, leftovers
from tests.integration.vm.conftest import simulator as simulator

pytestmark = pytest.mark.integration

POLICY_MESSAGE_END = "is not allowed by this Persistent Worker's security settings"
NONE_ONLY: dict[str, Any] = {"allowed-isolations": {"none": {}}}
METRIC_PREFIX = "org_cirruslabs_persistent_worker_"
ENGINES = ("podman", "docker")


def refusal(kind: str) -> str:
    """The §5.5 message of an isolation kind the policy does not list."""
    return f'invalid isolation parameters: "{kind}" isolation {POLICY_MESSAGE_END}'


def assert_refused(controller: FakeController, task: FakeTask, message: str) -> None:
    """``TaskFailed`` with exactly ``message``, then ``TaskStopped``, and nothing run."""
    done = task_stopped(controller, task.task_id, TASK_TIMEOUT)
    assert done.failures == [message]
    assert done.stopped == 1
    assert done.started == 0
    assert done.initial_commands_calls == 0
    failed = first_call_at(task_calls(controller, "TaskFailed", task.task_id))
    stopped = first_call_at(task_calls(controller, "TaskStopped", task.task_id))
    assert failed <= stopped


def invocations_after_start(
    sim: Simulator, controller: FakeController, worker: VmWorkerProcess
) -> int:
    """How many tool invocations the start-up clean-up made (it ends before the first poll)."""
    controller.wait_for_call("Poll", timeout=30)
    assert worker.running(), worker.stderr()[-3000:]
    return len(sim.argvs("tart")) + len(sim.argvs("vetu"))


def all_argvs(sim: Simulator) -> list[list[str]]:
    """Every recorded ``tart`` and ``vetu`` argument list, in log order."""
    if not sim.log.exists():
        return []
    return [json.loads(line)["argv"] for line in sim.log.read_text().splitlines()]


@pytest.fixture
def engine_log(tmp_path: Path, simulator: Simulator) -> Path:
    """Recording ``podman``/``docker`` shims first on the simulator's ``PATH``; their log file.

    Each shim appends its name and arguments as one JSON line, then runs the real engine.
    """
    shims = tmp_path / "engine-shims"
    shims.mkdir()
    log = tmp_path / "engine-calls.jsonl"
    for engine in ENGINES:
        real = shutil.which(engine, path=simulator.env["PATH"])
        run_real = f'exec {real} "$@"' if real else "exit 127"
        shim = shims / engine
        shim.write_text(
            "#!/bin/sh\n"
            f'"{simulator.env["CIRRUS_SIM_PYTHON"]}" -c \'import json, sys; '
            f'open(sys.argv[1], "a").write(json.dumps(sys.argv[2:]) + "\\n")\' '
            f'"{log}" {engine} "$@"\n'
            f"{run_real}\n"
        )
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    simulator.env["PATH"] = f"{shims}:{simulator.env['PATH']}"
    return log


def engine_calls(log: Path) -> list[list[str]]:
    """``[engine, args...]`` of every recorded engine call."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


# --- 1. the policy is checked before any tool -----------------------------------------------


def test_tart_vetu_and_container_tasks_a_none_only_policy_refuses_reach_no_tool(
    vm_worker: VmWorkerProcess,
    fake_controller: FakeController,
    simulator: Simulator,
    engine_log: Path,
) -> None:
    vm_worker.start(vm_worker.config(security=NONE_ONLY))
    at_start = invocations_after_start(simulator, fake_controller, vm_worker)
    engine_calls_at_start = engine_calls(engine_log)
    # A container-forbidding worker does not look for container leftovers either.
    assert engine_calls_at_start == []

    tasks = {
        "tart": vm_task(vm_isolation(simulator, "tart"), script("main", "echo must-not-run")),
        "vetu": vm_task(vm_isolation(simulator, "vetu"), script("main", "echo must-not-run")),
        "container": container_task(script("main", "echo must-not-run")),
    }
    for task in tasks.values():
        fake_controller.queue_task(task)
    for kind, task in tasks.items():
        assert_refused(fake_controller, task, refusal(kind))

    argvs = all_argvs(simulator)
    assert argvs[at_start:] == [], "tart/vetu ran for refused tasks"
    for task in tasks.values():
        assert not [a for a in argvs if any(task.task_id in arg for arg in a)]
    calls = engine_calls(engine_log)
    assert calls == [], f"the container engine ran for a refused task: {calls}"
    assert not [c for c in calls if len(c) > 1 and c[1] in ("run", "create")]
    assert simulator.vms("tart") == []
    assert simulator.vms("vetu") == []
    assert vm_worker.running()
    vm_worker.stop_and_check_clean()


def test_a_tart_image_the_allowed_images_refuse_reaches_no_tart_invocation(
    vm_worker: VmWorkerProcess, fake_controller: FakeController, simulator: Simulator
) -> None:
    policy = {"allowed-isolations": {"tart": {"allowed-images": ["ghcr.io/cirruslabs/allowed-*"]}}}
    vm_worker.start(vm_worker.config(security=policy))
    at_start = invocations_after_start(simulator, fake_controller, vm_worker)

    image = "ghcr.io/cirruslabs/refused:latest"
    task = fake_controller.queue_task(
        vm_task(vm_isolation(simulator, "tart", image), script("main", "echo must-not-run"))
    )
    assert_refused(
        fake_controller,
        task,
        f'invalid isolation parameters: "tart" VM image "{image}" {POLICY_MESSAGE_END}',
    )
    assert all_argvs(simulator)[at_start:] == []
    assert simulator.vms("tart") == []
    vm_worker.stop_and_check_clean()


@pytest.mark.parametrize(
    ("volume", "named"),
    [
        ({"source": "/etc", "target": "/mnt/etc"}, "/etc"),
        ({"name": "cache", "source": "/var/cache", "target": "/mnt/cache"}, "cache"),
    ],
)
def test_a_tart_volume_the_default_policy_refuses_reaches_no_tart_invocation(
    vm_worker: VmWorkerProcess,
    fake_controller: FakeController,
    simulator: Simulator,
    volume: dict[str, str],
    named: str,
) -> None:
    vm_worker.start()
    at_start = invocations_after_start(simulator, fake_controller, vm_worker)

    isolation = vm_isolation(simulator, "tart")
    isolation["tart"]["volumes"] = [volume]
    task = fake_controller.queue_task(vm_task(isolation, script("main", "echo must-not-run")))
    assert_refused(
        fake_controller,
        task,
        f'invalid isolation parameters: volume "{named}" {POLICY_MESSAGE_END}',
    )
    assert all_argvs(simulator)[at_start:] == []
    assert simulator.vms("tart") == []
    vm_worker.stop_and_check_clean()


# --- 2. standby hit and miss on /metrics ----------------------------------------------------


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metric_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` of every sample of the worker's metrics in ``text``."""
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(METRIC_PREFIX)
    ]


def counter(
    samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str
) -> list[float]:
    """Values of the ``<prefix><name>`` samples whose labels include ``labels``.

    A counter's sample ends in ``_total``, added once (``images.total`` is ``images_total``).
    """
    full = f"{METRIC_PREFIX}{name}"
    return [
        value
        for sample_name, sample_labels, value in samples
        if sample_name == full and labels.items() <= sample_labels.items()
    ]


def scrape(port: int) -> str:
    """The ``/metrics`` text, or ``""`` if it cannot be fetched right now."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.TransportError:
        return ""
    return answer.text if answer.status_code == 200 else ""


def standby_reported_since(controller: FakeController, since: float) -> list[Any]:
    """``availableStandbyInstancesInformation`` of the successful polls sent after ``since``."""
    return [
        call.body.get("availableStandbyInstancesInformation") or []
        for call in controller.successful_calls("Poll")
        if isinstance(call.body, dict) and call.received > since
    ]


def test_a_standby_hit_and_a_miss_are_counted_on_metrics_with_the_instance_attributes(
    vm_worker: VmWorkerProcess, fake_controller: FakeController, simulator: Simulator
) -> None:
    simulator.env.update(OTEL_METRICS_EXPORTER="none", OTEL_TRACES_EXPORTER="none")
    simulator.env.pop("OTEL_SDK_DISABLED", None)
    image = "ghcr.io/cirruslabs/standby-metrics:latest"
    isolation = vm_isolation(simulator, "tart", image)
    config = vm_worker.config(standby={"isolation": isolation, "resources": {"slots": 1}})
    port = free_port()
    vm_worker.start(config, "--listen", f"127.0.0.1:{port}")
    fake_controller.wait_for(
        lambda: any(standby_reported(fake_controller)), TASK_TIMEOUT, "a warm standby reported"
    )
    first_standby = simulator.vms("tart")

    hit = fake_controller.queue_task(
        vm_task(isolation, script("main", "true"), resources_to_use={"slots": 1})
    )
    hit_done = task_stopped(fake_controller, hit.task_id, TASK_TIMEOUT)
    assert hit_done.failures == []
    assert hit_done.stopped_at is not None
    hit_stopped_at = hit_done.stopped_at
    # A miss is a task meeting a ready standby: wait until the next one is reported as ready.
    fake_controller.wait_for(
        lambda: any(standby_reported_since(fake_controller, hit_stopped_at)),
        TASK_TIMEOUT,
        "a second standby reported",
    )
    assert len(simulator.vms("tart")) == 1
    assert simulator.vms("tart") != first_standby
    miss = fake_controller.queue_task(
        vm_task(vm_isolation(simulator, "vetu"), script("main", "true"))
    )
    assert task_stopped(fake_controller, miss.task_id, TASK_TIMEOUT).failures == []

    deadline = time.monotonic() + 30
    samples = metric_samples(scrape(port))
    while not (counter(samples, "standby_hit_total") and counter(samples, "standby_miss_total")):
        assert vm_worker.running(), vm_worker.stderr()[-3000:]
        assert time.monotonic() < deadline, f"no standby counters on /metrics: {samples}"
        time.sleep(0.1)
        samples = metric_samples(scrape(port))

    standby_labels = {"instance_type": "tart", "image": image}
    assert counter(samples, "standby_hit_total") == [1.0]
    assert counter(samples, "standby_hit_total", **standby_labels) == [1.0]
    assert counter(samples, "standby_miss_total") == [1.0]
    assert counter(samples, "standby_miss_total", **standby_labels) == [1.0]
    assert counter(samples, "images_total", instance_type="tart", image=image) == [1.0]
    vetu_image = vm_isolation(simulator, "vetu")["vetu"]["image"]
    assert counter(samples, "images_total", instance_type="vetu", image=vetu_image) == [1.0]
    assert sum(counter(samples, "tasks_count_total")) == 2.0
    vm_worker.stop_and_check_clean()


# --- 3. clean-up after a failure and after a cancellation -----------------------------------


def vm_state_entries(worker: VmWorkerProcess) -> list[dict[str, Any]]:
    """The entries of the worker's VM state file (none if the file does not exist)."""
    path = worker.tmp_path / "state" / "vms.json"
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text()).get("vms", [])
    return entries


def tool_processes(sim: Simulator, worker: VmWorkerProcess) -> list[psutil.Process]:
    """Simulator, sshd and guest processes of this test, apart from the worker itself."""
    return [p for p in leftovers(sim) if p.pid != worker.pid]


def assert_nothing_left(sim: Simulator, worker: VmWorkerProcess, tool: str) -> None:
    """No VM directory, no simulator/sshd/guest process and no state entry remain."""
    deadline = time.monotonic() + 10
    while tool_processes(sim, worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [" ".join(p.cmdline()) for p in tool_processes(sim, worker)]
    assert left == [], f"processes left after TaskStopped: {left}"
    root = sim.home / tool
    assert not root.exists() or sorted(p.name for p in root.iterdir()) == []
    assert vm_state_entries(worker) == []


def test_a_vetu_task_whose_script_fails_leaves_no_vm_process_or_state_entry(
    vm_worker: VmWorkerProcess, fake_controller: FakeController, simulator: Simulator
) -> None:
    task = fake_controller.queue_task(
        vm_task(vm_isolation(simulator, "vetu"), script("main", "echo failing", "exit 3"))
    )
    vm_worker.start()
    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert done.failures == []
    assert done.started == 1
    assert done.stopped == 1
    assert reported_statuses(done) == {"main": "FAILED"}
    assert [a for a in simulator.argvs("vetu") if a[0] == "run"], "the task never ran a VM"
    assert_nothing_left(simulator, vm_worker, "vetu")
    assert vm_worker.running()
    vm_worker.stop_and_check_clean()


def test_a_cancelled_tart_task_is_aborted_and_leaves_no_vm_process_or_state_entry(
    vm_worker: VmWorkerProcess,
    fake_controller: FakeController,
    simulator: Simulator,
    sleep_marker: str,
) -> None:
    task = fake_controller.queue_task(
        vm_task(
            vm_isolation(simulator, "tart"),
            script("long", "echo started-long", f"sleep {sleep_marker}"),
            script("after", "echo must-not-run"),
        )
    )
    vm_worker.start()
    fake_controller.wait_for(
        lambda: bool(guest_processes(simulator, f"sleep {sleep_marker}")),
        TASK_TIMEOUT,
        "the task's sleep in the VM",
    )
    fake_controller.wait_for(
        lambda: bool(vm_state_entries(vm_worker)), 10, "the running VM in the state file"
    )
    fake_controller.stop_task(task.task_id)

    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert done.failures == []
    assert done.stopped == 1
    assert reported_statuses(done) == {"long": "ABORTED", "after": "SKIPPED"}
    assert "must-not-run" not in done.log_text()
    assert_nothing_left(simulator, vm_worker, "tart")
    assert not sleeps_of(sleep_marker)
    assert vm_worker.running()
    vm_worker.stop_and_check_clean()


def test_a_cancelled_container_task_leaves_no_container_with_the_worker_labels(
    worker: WorkerProcess,
    fake_controller: FakeController,
    podman_ready: None,
    labelled_cleanup: list[str],
    sleep_marker: str,
) -> None:
    task = fake_controller.queue_task(
        container_task(
            script("long", "echo started-long", f"sleep {sleep_marker}"),
            script("after", "echo must-not-run"),
        )
    )
    labelled_cleanup.append(task.task_id)
    worker.start()
    fake_controller.wait_for(
        lambda: "started-long" in fake_controller.task(task.task_id).log_text("long"),
        TASK_TIMEOUT,
        "the container task's first output",
    )
    assert containers_labelled(f"{TASK_LABEL}={task.task_id}") != []
    fake_controller.stop_task(task.task_id)

    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert done.failures == []
    assert done.stopped == 1
    assert reported_statuses(done) == {"long": "ABORTED", "after": "SKIPPED"}
    assert containers_labelled(f"{TASK_LABEL}={task.task_id}") == []
    assert containers_labelled(f"{PID_LABEL}={worker.pid}") == []
    assert worker.running()
    assert "Traceback" not in worker.output()
