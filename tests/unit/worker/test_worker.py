"""The worker loop with a scripted controller: task lifecycle, refusals, drain, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from app.worker.poll_loop import Worker, WorkerSettings, refusal_message
from app.worker.retry import BackoffPolicy, Sleep
from app.worker.task_runner import TaskRunner
from app.worker.upstream import Upstream
from domain.errors import DefiniteControllerError, SessionLostError
from domain.isolation import ContainerIsolation, NoneIsolation
from domain.modifiers import ModifierPool, ResourceModifier
from domain.policy import AllowedIsolations, ContainerPolicy, SecurityPolicy
from domain.protocol import (
    AgentAwareTask,
    CacheInstruction,
    Command,
    CommandsResponse,
    ExecutionBehaviour,
    ExitInstruction,
    FileInstruction,
    PollRequest,
    PollResponse,
    ScriptInstruction,
    UploadCacheInstruction,
    WorkerInfo,
    frozen_float_map,
)
from tests.unit.worker.fake_tools import ToolCalls, fake_tools
from tests.unit.worker.fakes import (
    FakeClock,
    FakeController,
    FakeInstances,
    ManualTimers,
    Sleeps,
    eventually,
)


def script(
    name: str, text: str, behaviour: ExecutionBehaviour = ExecutionBehaviour.ON_SUCCESS
) -> Command:
    return Command(name, ScriptInstruction((text,)), behaviour)


def task(
    task_id: str, resources: dict[str, float] | None = None, isolation: object = None
) -> AgentAwareTask:
    return AgentAwareTask(
        task_id=task_id,
        client_secret="secret",
        isolation=isolation or NoneIsolation(),  # type: ignore[arg-type]
        resources_to_use=frozen_float_map(resources or {}),
    )


class Rig:
    """A worker wired to fakes."""

    def __init__(
        self,
        *,
        controllers: int = 1,
        policy: SecurityPolicy | None = None,
        instance_error: str | None = None,
        ephemeral: bool = False,
        modifiers: tuple[ResourceModifier, ...] = (),
        worker_sleep: Sleep | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.sleeps = Sleeps()
        self.timers = ManualTimers()
        self.controllers = [
            FakeController(endpoint=f"http://c{i}.test") for i in range(controllers)
        ]
        self.instances = FakeInstances(instance_error)
        self.modifiers = ModifierPool(modifiers)
        self.tool_calls = ToolCalls()
        policy_ = policy or SecurityPolicy()
        self.upstreams = [
            Upstream(
                c,
                WorkerInfo(labels={"name": "w1"}),
                clock=self.clock,
                policy=BackoffPolicy(),
                sleep=self.sleeps,
            )
            for c in self.controllers
        ]
        runner = TaskRunner(
            policy=policy_,
            instances=self.instances,
            modifiers=self.modifiers,
            clock=self.clock,
            tools=fake_tools(self.tool_calls),
            timer_sleep=self.timers,
            log_flush_interval=None,
        )
        self.worker = Worker(
            WorkerSettings(
                name="w1", resources_total=frozen_float_map({"cpu": 4}), ephemeral=ephemeral
            ),
            self.upstreams,
            runner,
            clock=self.clock,
            sleep=worker_sleep or self.sleeps,
        )
        self.controller = self.controllers[0]

    def start(self) -> asyncio.Task[int]:
        return asyncio.create_task(self.worker.run())


async def blocked(rig: Rig, task_id: str) -> None:
    def running() -> bool:
        instance = rig.instances.created.get(task_id)
        return instance is not None and instance.blocking.is_set()

    await eventually(running, f"{task_id} running its command")


async def run_with_blocked_t1(rig: Rig) -> asyncio.Task[int]:
    """Start the worker and hand it ``t1``, whose one command blocks; return the worker's run
    once that command runs."""
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "block"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await blocked(rig, "t1")
    return run


async def fresh_poll(controller: FakeController) -> PollRequest:
    """Answer the pending poll and return the request of the next one, built after that."""
    count = len(controller.polls)
    controller.answer(PollResponse())
    await eventually(lambda: len(controller.polls) > count, "next poll")
    return controller.polls[-1]


async def finish(rig: Rig, run: asyncio.Task[int]) -> int:
    for controller in rig.controllers:
        controller.answer(PollResponse(shutdown=True))
    return await asyncio.wait_for(run, 5)


async def test_a_task_runs_its_commands_and_reports_everything_in_protocol_order() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        environment={"FOO": "bar", "CI": "yes"},
        commands=(
            script("build", "print:hello"),
            script("test", "fail"),
            script("skipped", "true"),
            script("on_failure", "true", ExecutionBehaviour.ON_FAILURE),
            script("always", "true", ExecutionBehaviour.ALWAYS),
        ),
    )
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", {"cpu": 2}),)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    names = rig.controller.names()
    assert names.index("task_started") < names.index("initial_commands")
    assert names.index("initial_commands") < names.index("finished") < names.index("task_stopped")
    updates = [v for n, v in rig.controller.calls if n == "update"]
    assert updates == [
        ("t1", "build", "EXECUTING"),
        ("t1", "build", "COMPLETED"),
        ("t1", "test", "EXECUTING"),
        ("t1", "test", "FAILED"),
        ("t1", "skipped", "SKIPPED"),
        ("t1", "on_failure", "EXECUTING"),
        ("t1", "on_failure", "COMPLETED"),
        ("t1", "always", "EXECUTING"),
        ("t1", "always", "COMPLETED"),
    ]
    assert rig.controller.logs("t1", "build") == b"hello"
    assert "task_failed" not in names
    env = rig.instances.created["t1"].scripts[0][1]
    assert env["CI"] == "yes"
    assert env["FOO"] == "bar"
    assert env["CIRRUS_CI"] == "true"
    assert env["CIRRUS_TASK_ID"] == "t1"
    assert env["CIRRUS_WORKING_DIR"] == "/work/t1"
    assert env["PATH"] == "/bin"
    assert rig.instances.created["t1"].closed
    assert await finish(rig, run) == 0


async def test_a_running_task_is_reported_with_its_resources_until_it_stopped() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "block"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", {"cpu": 2}),)))
    await blocked(rig, "t1")
    rig.controller.answer(PollResponse())
    await eventually(lambda: len(rig.controller.polls) >= 2, "second poll")
    second = rig.controller.polls[1]
    assert second.running_tasks == ("t1",)
    assert dict(second.resources_in_use) == {"cpu": 2.0}
    snapshot = rig.worker.snapshot()
    assert [t.task_id for t in snapshot.tasks] == ["t1"]
    assert dict(snapshot.resources_free) == {"cpu": 2.0}
    rig.controller.answer(PollResponse(tasks_to_stop=("t1",)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    await eventually(lambda: "t1" not in rig.worker.tasks, "t1 forgotten")
    after = await fresh_poll(rig.controller)
    assert after.running_tasks == ()
    assert dict(after.resources_in_use) == {}
    assert await finish(rig, run) == 0


async def test_a_cancelled_task_aborts_its_command_skips_the_rest_and_is_not_failed() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        commands=(
            script("a", "block"),
            script("b", "true"),
            script("al", "true", ExecutionBehaviour.ALWAYS),
        )
    )
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await blocked(rig, "t1")
    rig.controller.answer(PollResponse(tasks_to_stop=("t1", "unknown")))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    updates = [v for n, v in rig.controller.calls if n == "update"]
    assert updates[-3:] == [("t1", "a", "ABORTED"), ("t1", "b", "SKIPPED"), ("t1", "al", "SKIPPED")]
    assert rig.instances.created["t1"].interrupted == ["block"]
    assert "task_failed" not in rig.controller.names()
    assert rig.instances.created["t1"].closed
    assert await finish(rig, run) == 0


async def test_a_timed_out_task_aborts_its_command_and_runs_timeout_and_always_commands() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        timeout_in_seconds=30,
        commands=(
            script("a", "block"),
            script("b", "true"),
            script("f", "true", ExecutionBehaviour.ON_FAILURE),
            script("t", "true", ExecutionBehaviour.ON_TIMEOUT),
            script("al", "true", ExecutionBehaviour.ALWAYS),
        ),
    )
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await blocked(rig, "t1")
    assert rig.timers.requested == [30.0]
    rig.clock.advance(30)
    rig.timers.fire()
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    finished = [v for n, v in rig.controller.calls if n == "finished"]
    assert finished == [
        (
            ("a", "ABORTED"),
            ("b", "SKIPPED"),
            ("f", "SKIPPED"),
            ("t", "COMPLETED"),
            ("al", "COMPLETED"),
        )
    ]
    assert rig.timers.requested[1:] == [300.0, 300.0]
    assert b"Timed out" in rig.controller.logs("t1", "a")
    assert "task_failed" not in rig.controller.names()
    assert await finish(rig, run) == 0


async def test_a_policy_rejection_fails_and_stops_the_task_and_releases_everything() -> None:
    policy = SecurityPolicy(AllowedIsolations(container=ContainerPolicy()))
    rig = Rig(policy=policy, modifiers=(ResourceModifier(match=frozen_float_map({"gpu": 1})),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", {"gpu": 1}),)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    names = rig.controller.names()
    assert names.index("task_failed") < names.index("task_stopped")
    assert "task_started" not in names
    assert rig.instances.created == {}
    assert rig.modifiers.held() == {}
    await eventually(lambda: "t1" not in rig.worker.tasks, "t1 forgotten")
    after = await fresh_poll(rig.controller)
    assert after.running_tasks == ()
    assert dict(after.resources_in_use) == {}
    assert await finish(rig, run) == 0


async def test_an_instance_error_fails_the_task_with_its_message_and_frees_the_modifier() -> None:
    rig = Rig(instance_error="no such image", modifiers=(ResourceModifier(),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    failed = [v for n, v in rig.controller.calls if n == "task_failed"]
    assert failed == [("t1", "failed to create an instance: no such image")]
    assert rig.modifiers.held() == {}
    assert await finish(rig, run) == 0


async def test_a_duplicate_task_id_is_ignored() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "block"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"), task("t1"))))
    await blocked(rig, "t1")
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),), tasks_to_stop=()))
    await eventually(lambda: len(rig.controller.polls) >= 2)
    assert rig.controller.names().count("task_started") == 1
    rig.worker.cancel_all()
    assert await finish(rig, run) == 0
    assert rig.controller.names().count("task_stopped") == 1


async def test_a_draining_worker_refuses_new_tasks_finishes_running_ones_and_exits() -> None:
    rig = Rig()
    run = await run_with_blocked_t1(rig)
    rig.worker.drain()
    await eventually(lambda: ("update_status", True) in rig.controller.calls, "UpdateStatus")
    rig.controller.answer(PollResponse(tasks_to_start=(task("t2"),)))
    await eventually(lambda: ("task_stopped", "t2") in rig.controller.calls, "t2 refused")
    assert ("task_failed", ("t2", refusal_message("w1"))) in rig.controller.calls
    assert refusal_message("w1") == "worker w1 is shutting down and accepts no new tasks"
    assert "t2" not in rig.instances.created
    assert not run.done()
    rig.controller.answer(PollResponse(tasks_to_stop=("t1",)))
    assert await asyncio.wait_for(run, 5) == 0
    assert ("task_stopped", "t1") in rig.controller.calls


async def test_a_draining_worker_that_registers_again_says_it_drains_before_it_polls() -> None:
    """The controller clears a drain's pause on registration: the new session must hear it."""
    rig = Rig()
    run = await run_with_blocked_t1(rig)
    rig.worker.drain()
    await eventually(lambda: ("update_status", True) in rig.controller.calls, "UpdateStatus")
    rig.controller.failures["poll"] = [SessionLostError("unauthenticated", "who are you")]
    polls = len(rig.controller.polls)
    rig.controller.answer(PollResponse())  # the held poll returns; the next one is refused
    await eventually(lambda: len(rig.controller.polls) > polls, "a poll of the new session")
    after = rig.controller.names()[rig.controller.names().index("update_status") + 1 :]
    assert after[after.index("register") + 1] == "update_status"
    assert rig.controller.calls.count(("update_status", True)) == 2
    rig.controller.answer(PollResponse(tasks_to_stop=("t1",)))
    assert await asyncio.wait_for(run, 5) == 0


async def test_draining_a_worker_the_controller_never_accepted_stops_it_at_once() -> None:
    rig = Rig()
    rig.controller.failures["register"] = [
        DefiniteControllerError("unauthenticated", "wrong token") for _ in range(10_000)
    ]
    run = rig.start()
    await eventually(lambda: len(rig.sleeps.delays) >= 3, "registration retried")
    rig.worker.drain()
    assert await asyncio.wait_for(run, 5) == 0
    assert rig.controller.names() == []


async def test_a_second_signal_cancels_running_tasks_and_the_worker_exits() -> None:
    rig = Rig()
    run = await run_with_blocked_t1(rig)
    rig.worker.drain()
    rig.worker.cancel_all()
    assert await asyncio.wait_for(run, 5) == 0
    assert rig.controller.names()[-1] == "task_stopped"
    assert "task_failed" not in rig.controller.names()


async def test_shutdown_stops_polling_and_lets_running_tasks_finish_and_be_reported() -> None:
    rig = Rig()
    run = await run_with_blocked_t1(rig)
    rig.controller.answer(PollResponse(shutdown=True))
    await eventually(lambda: rig.worker.polling_stopped, "shutdown seen")
    assert not run.done()
    polls = len(rig.controller.polls)
    rig.worker.tasks["t1"].cancel()
    assert await asyncio.wait_for(run, 5) == 0
    assert len(rig.controller.polls) == polls
    assert ("task_stopped", "t1") in rig.controller.calls


async def test_an_ephemeral_worker_runs_one_task_refuses_others_and_exits() -> None:
    rig = Rig(ephemeral=True)
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "true"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"), task("t2"))))
    assert await asyncio.wait_for(run, 5) == 0
    assert ("task_failed", ("t2", refusal_message("w1"))) in rig.controller.calls
    assert ("task_stopped", "t1") in rig.controller.calls
    assert ("task_stopped", "t2") in rig.controller.calls
    assert list(rig.instances.created) == ["t1"]


async def test_reports_survive_an_outage_and_arrive_in_order_after_recovery() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        commands=(script("a", "print:one"), script("b", "print:two"))
    )
    rig.controller.go_down_after = "initial_commands"
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await eventually(lambda: len(rig.sleeps.delays) >= 5, "retries during the outage")
    assert all(delay <= 15.0 + 1.0 for delay in rig.sleeps.delays)
    rig.controller.down = False
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    updates = [v[1:] for n, v in rig.controller.calls if n == "update" and isinstance(v, tuple)]
    assert updates == [
        ("a", "EXECUTING"),
        ("a", "COMPLETED"),
        ("b", "EXECUTING"),
        ("b", "COMPLETED"),
    ]
    assert rig.controller.logs("t1", "a") == b"one"
    assert rig.controller.logs("t1", "b") == b"two"
    assert await finish(rig, run) == 0


async def test_file_exit_and_an_upload_of_an_unknown_cache() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        environment={"KEY": "from-env", "DIR": "sub"},
        commands=(
            Command("f1", FileInstruction("$DIR/a.txt", from_contents="literal")),
            Command("f2", FileInstruction("b.txt", from_environment_variable="KEY")),
            Command("f3", FileInstruction("c.txt", from_environment_variable="MISSING")),
            Command("cache", UploadCacheInstruction("x"), ExecutionBehaviour.ALWAYS),
            Command("exit", ExitInstruction(), ExecutionBehaviour.ALWAYS),
            script("after", "true", ExecutionBehaviour.ON_FAILURE),
            script("al", "true", ExecutionBehaviour.ALWAYS),
        ),
    )
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    files = rig.instances.created["t1"].files
    assert files == {"sub/a.txt": b"literal", "b.txt": b"from-env"}
    finished = [v for n, v in rig.controller.calls if n == "finished"]
    assert finished == [
        (
            ("f1", "COMPLETED"),
            ("f2", "COMPLETED"),
            ("f3", "FAILED"),
            ("cache", "FAILED"),
            ("exit", "COMPLETED"),
            ("after", "SKIPPED"),
            ("al", "COMPLETED"),
        )
    ]
    assert b"No cache found for x!" in rig.controller.logs("t1", "cache")
    assert b"MISSING" in rig.controller.logs("t1", "f3")
    assert await finish(rig, run) == 0


async def test_background_scripts_are_stopped_when_the_task_ends() -> None:
    from domain.protocol import BackgroundScriptInstruction

    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        commands=(Command("bg", BackgroundScriptInstruction(("sleep 100",))), script("a", "true"))
    )
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    assert [b.stopped for b in rig.instances.created["t1"].background] == [True]
    assert rig.controller.logs("t1", "bg") == b"bg started\n"
    assert await finish(rig, run) == 0


async def test_unsupported_isolations_fail_with_a_clear_message() -> None:
    from app.worker.instances import IsolationInstances

    instances = IsolationInstances({})
    with pytest.raises(Exception, match="isolation 'container' is not supported"):
        await instances.create(task("t1", isolation=ContainerIsolation(image="x")), None)


async def test_several_upstreams_each_report_only_their_own_tasks() -> None:
    rig = Rig(controllers=2)
    first, second = rig.controllers
    first.commands["a"] = CommandsResponse(commands=(script("x", "block"),))
    second.commands["b"] = CommandsResponse(commands=(script("x", "block"),))
    run = rig.start()
    first.answer(PollResponse(tasks_to_start=(task("a", {"cpu": 1}),)))
    second.answer(PollResponse(tasks_to_start=(task("b", {"cpu": 2}),)))
    await eventually(lambda: len(rig.instances.created) == 2)
    # The polls sent at once after each start may predate the other task; answer them.
    first.answer(PollResponse())
    second.answer(PollResponse())
    await eventually(lambda: len(first.polls) >= 3 and len(second.polls) >= 3)
    assert first.polls[2].running_tasks == ("a",)
    assert second.polls[2].running_tasks == ("b",)
    assert dict(first.polls[2].resources_in_use) == {"cpu": 3.0}
    rig.worker.cancel_all()
    assert await finish(rig, run) == 0
    assert ("task_stopped", "a") in first.calls
    assert ("task_stopped", "b") in second.calls


async def test_secrets_too_short_to_mask_are_reported_to_the_warning_the_root_wired_in() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        secrets_to_mask=("ex", "hunter2"), commands=(script("a", "echo"),)
    )
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    assert rig.tool_calls.unmaskable == [1]
    assert await finish(rig, run) == 0


async def test_a_cache_upload_after_a_miss_archives_through_the_host_tools_in_a_workspace() -> None:
    rig = Rig()
    rig.controller.commands["t1"] = CommandsResponse(
        commands=(
            Command("c", CacheInstruction(folders=("deps",), fingerprint_key="k")),
            Command("up", UploadCacheInstruction("c")),
        ),
    )
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    # The fake archives call every folder empty: the upload is skipped after its workspace.
    assert ("workspace", "t1") in rig.tool_calls.calls
    assert not [c for c in rig.tool_calls.calls if c[0] in ("download", "upload")]
    assert await finish(rig, run) == 0
