"""The task environment while commands run: expansion against the instance, CIRRUS_ENV merges."""

from __future__ import annotations

from app.worker.task_env import TaskEnvironment
from tests.unit.worker.fakes import FakeInstance


async def test_values_are_expanded_against_the_instances_environment_then_each_other() -> None:
    instance = FakeInstance("t1")
    env = TaskEnvironment(
        instance,
        {"PATH": "$HOME/bin:$PATH", "TOOLS": "$CIRRUS_WORKING_DIR/tools", "GONE": "x${NOPE}y"},
    )
    await env.prepare()
    command = await env.for_command()
    assert command["PATH"] == "/home/t1/bin:/bin"
    assert command["TOOLS"] == "/work/t1/tools"
    assert command["GONE"] == "xy"
    assert command["CIRRUS_WORKING_DIR"] == "/work/t1"
    assert instance.probes == 1


async def test_the_instance_is_not_probed_when_nothing_refers_to_a_variable() -> None:
    instance = FakeInstance("t1")
    env = TaskEnvironment(instance, {"A": "plain", "CIRRUS_WORKING_DIR": "rel/dir"})
    await env.prepare()
    assert (await env.for_command())["CIRRUS_WORKING_DIR"] == "/work/t1/rel/dir"
    assert instance.probes == 0


async def test_cirrus_env_lines_change_later_commands_and_are_expanded_again() -> None:
    env = TaskEnvironment(FakeInstance("t1"), {"BASE": "b"})
    await env.prepare()
    assert await env.merge_env_file("NEW=$BASE-1\nPATH=/opt/bin:$PATH\n") is None
    command = await env.for_command()
    assert command["NEW"] == "b-1"
    assert command["PATH"] == "/opt/bin:/bin"


async def test_a_malformed_cirrus_env_file_changes_nothing_and_says_why() -> None:
    env = TaskEnvironment(FakeInstance("t1"), {"A": "1"})
    await env.prepare()
    error = await env.merge_env_file("A=2\njunk\n")
    assert error is not None
    assert "KEY=VALUE" in error
    assert (await env.for_command())["A"] == "1"


async def test_cirrus_env_values_are_masked_only_with_cirrus_env_sensitive() -> None:
    env = TaskEnvironment(FakeInstance("t1"), {}, secrets=("s3cret", ""))
    await env.merge_env_file("TOKEN=visible\n")
    assert list(env.masks) == ["s3cret"]
    await env.merge_env_file("CIRRUS_ENV_SENSITIVE=true\nKEY=hidden\n")
    assert list(env.masks) == ["s3cret", "true", "hidden"]


async def test_cirrus_shell_becomes_shell_where_the_instance_has_one_unless_the_task_sets_it() -> (
    None
):
    class WithShell(FakeInstance):
        def base_environment(self) -> dict[str, str]:
            return {"PATH": "/bin", "SHELL": "/bin/ash"}

    assert (await TaskEnvironment(WithShell("t"), {"CIRRUS_SHELL": "bash"}).for_command())[
        "SHELL"
    ] == "bash"
    direct = await TaskEnvironment(WithShell("t"), {"CIRRUS_SHELL": "direct"}).for_command()
    assert direct["SHELL"] == "/bin/ash"
    own = await TaskEnvironment(
        WithShell("t"), {"CIRRUS_SHELL": "bash", "SHELL": "zsh"}
    ).for_command()
    assert own["SHELL"] == "zsh"
    without = await TaskEnvironment(FakeInstance("t"), {"CIRRUS_SHELL": "bash"}).for_command()
    assert "SHELL" not in without
