"""The ``.cirrus.yml`` subset: tasks, defaults, commands, isolation, errors naming task and key."""

from __future__ import annotations

import textwrap

import pytest

from adapters.cirrus_yaml import parse_build
from adapters.cirrus_yaml.worker import CONTAINER_DEFAULT_CPU, CONTAINER_DEFAULT_MEMORY_MIB
from domain.build import BuildConfigError, BuildSpec, TaskSpec
from domain.isolation import (
    ContainerIsolation,
    ContainerVolume,
    NoneIsolation,
    TartIsolation,
    TartVolume,
    VetuBridged,
    VetuHost,
    VetuIsolation,
)
from domain.protocol import (
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    Command,
    ExecutionBehaviour,
    FileInstruction,
    ScriptInstruction,
)

EXAMPLE = """
persistent_worker:
  labels:
    tart: installed
  resources:
    tart-vms: 1
  isolation:
    tart:
      image: ghcr.io/cirruslabs/macos-sonoma-base:latest
      user: admin
      password: admin

task:
  script: echo one
task:
  script: echo two
task:
  script: echo three
"""


def parse(text: str) -> BuildSpec:
    return parse_build(textwrap.dedent(text))


def only_task(text: str) -> TaskSpec:
    build = parse(text)
    assert len(build.tasks) == 1
    return build.tasks[0]


def refusal(text: str) -> str:
    with pytest.raises(BuildConfigError) as error:
        parse(text)
    return str(error.value)


# --- tasks and names -----------------------------------------------------------------------


def test_every_duplicate_task_key_is_its_own_task() -> None:
    build = parse(
        """
        task: {name: one, script: echo one}
        task: {name: two, script: echo two}
        task: {name: three, script: echo three}
        """
    )
    assert [task.name for task in build.tasks] == ["one", "two", "three"]
    assert build.task("two").commands == (Command("main", ScriptInstruction(("echo two",))),)


def test_unnamed_duplicate_tasks_are_all_main() -> None:
    build = parse(EXAMPLE)
    assert [task.name for task in build.tasks] == ["main", "main", "main"]
    assert [task.commands[0].instruction for task in build.tasks] == [
        ScriptInstruction((f"echo {word}",)) for word in ("one", "two", "three")
    ]


def test_a_task_without_name_is_main() -> None:
    assert only_task("task: {script: 'true'}").name == "main"


def test_a_named_task_key_gives_the_name_unless_name_is_set() -> None:
    build = parse(
        """
        lint_task: {script: 'true'}
        build_task: {name: compile, script: 'true'}
        """
    )
    assert [task.name for task in build.tasks] == ["lint", "compile"]


def test_the_example_build_has_three_tart_tasks_with_one_vm_each() -> None:
    text = EXAMPLE
    for word in ("one", "two", "three"):
        text = text.replace(f"  script: echo {word}", f"  name: {word}\n  script: echo {word}")
    build = parse_build(text)
    assert len(build.tasks) == 3
    for task in build.tasks:
        assert dict(task.resources) == {"tart-vms": 1.0}
        assert dict(task.labels) == {"tart": "installed"}
        assert task.isolation == TartIsolation(
            image="ghcr.io/cirruslabs/macos-sonoma-base:latest", user="admin", password="admin"
        )


def test_a_numeric_name_is_kept_as_written() -> None:
    assert only_task("task: {name: 1.10, script: 'true'}").name == "1.10"


# --- defaults and overrides ----------------------------------------------------------------


def test_top_level_env_is_a_default_that_task_env_overrides_per_variable() -> None:
    build = parse(
        """
        env: {A: top, B: top}
        environment: {C: top}
        a_task:
          env: {B: task}
          script: 'true'
        b_task:
          environment: {A: mine}
          script: 'true'
        """
    )
    assert dict(build.task("a").environment) == {"A": "top", "B": "task", "C": "top"}
    assert dict(build.task("b").environment) == {"A": "mine", "B": "top", "C": "top"}


def test_env_values_are_kept_as_written() -> None:
    task = only_task("task: {env: {V: 1.10, F: yes, N: 007, E: }, script: 'true'}")
    assert dict(task.environment) == {"V": "1.10", "F": "yes", "N": "007", "E": ""}


def test_a_task_persistent_worker_replaces_the_top_level_one() -> None:
    build = parse(
        """
        persistent_worker: {labels: {os: darwin}, resources: {tart-vms: 1}}
        a_task: {script: 'true'}
        b_task:
          persistent_worker: {labels: {os: linux}}
          script: 'true'
        """
    )
    assert dict(build.task("a").labels) == {"os": "darwin"}
    assert dict(build.task("b").labels) == {"os": "linux"}
    assert dict(build.task("b").resources) == {}


def test_a_task_without_persistent_worker_runs_anywhere_without_isolation() -> None:
    task = only_task("task: {script: 'true'}")
    assert task.isolation == NoneIsolation()
    assert dict(task.labels) == {}
    assert dict(task.resources) == {}


def test_the_submitted_environment_is_kept_on_the_build() -> None:
    build = parse_build("task: {env: {A: task}, script: 'true'}", {"A": "sub", "B": "sub"})
    assert dict(build.environment) == {"A": "sub", "B": "sub"}
    assert build.environment_for(build.tasks[0]) == {"A": "task", "B": "sub"}


def test_yaml_anchors_and_merge_keys_work_and_explicit_keys_win() -> None:
    build = parse(
        """
        a_task: &base
          env: {A: base}
          persistent_worker: {labels: {os: linux}}
          script: echo base
        b_task:
          <<: *base
          env: {A: mine}
        """
    )
    b = build.task("b")
    assert dict(b.environment) == {"A": "mine"}
    assert dict(b.labels) == {"os": "linux"}
    assert b.commands == (Command("main", ScriptInstruction(("echo base",))),)


# --- commands ------------------------------------------------------------------------------


def test_commands_keep_yaml_order_with_names_and_behaviours() -> None:
    task = only_task(
        """
        task:
          setup_script: ./setup
          server_background_script: ./serve
          script:
            - make
            - make test
          on_failure:
            logs_artifacts: {path: "*.log"}
            debug_script: dmesg
          config_file: {path: conf.json, variable_name: CONFIG}
          always:
            junit_artifacts: {paths: [a.xml, b.xml]}
          notes_file: {path: notes.txt, from_contents: "hello"}
        """
    )
    on_failure, always = ExecutionBehaviour.ON_FAILURE, ExecutionBehaviour.ALWAYS
    assert task.commands == (
        Command("setup", ScriptInstruction(("./setup",))),
        Command("server", BackgroundScriptInstruction(("./serve",))),
        Command("main", ScriptInstruction(("make", "make test"))),
        Command("logs", ArtifactsInstruction(("*.log",)), on_failure),
        Command("debug", ScriptInstruction(("dmesg",)), on_failure),
        Command("config", FileInstruction("conf.json", from_environment_variable="CONFIG")),
        Command("junit", ArtifactsInstruction(("a.xml", "b.xml")), always),
        Command("notes", FileInstruction("notes.txt", from_contents="hello")),
    )


def test_plain_background_script_file_and_artifacts_keys_are_command_main() -> None:
    assert only_task("task: {background_script: x}").commands == (
        Command("main", BackgroundScriptInstruction(("x",))),
    )
    assert only_task("task: {artifacts: {path: x}}").commands[0].name == "main"


def test_a_multi_line_script_stays_one_entry() -> None:
    task = only_task(
        """
        task:
          script: |
            echo a
            echo b
        """
    )
    assert task.commands[0].instruction == ScriptInstruction(("echo a\necho b\n",))


def test_two_commands_with_one_name_are_refused() -> None:
    message = refusal("task: {build_script: a, build_background_script: b}")
    assert message == 'task "main": duplicate command name "build"'


# --- timeouts and dependencies -------------------------------------------------------------


@pytest.mark.parametrize(("written", "seconds"), [("30m", 1800), ("2h", 7200), ("90s", 90)])
def test_timeout_in_takes_durations(written: str, seconds: int) -> None:
    assert only_task(f"task: {{timeout_in: {written}, script: 'true'}}").timeout_seconds == seconds


def test_timeout_defaults_to_sixty_minutes() -> None:
    assert only_task("task: {script: 'true'}").timeout_seconds == 3600


def test_a_bad_duration_names_the_task_and_key() -> None:
    message = refusal("build_task: {timeout_in: 5x, script: 'true'}")
    assert message.startswith('task "build": "timeout_in" is invalid')


def test_a_zero_timeout_is_refused() -> None:
    assert '"timeout_in" must be longer than 0s' in refusal("task: {timeout_in: 0s}")


def test_depends_on_takes_a_name_or_a_list() -> None:
    build = parse(
        """
        a_task: {script: 'true'}
        b_task: {depends_on: a, script: 'true'}
        c_task: {depends_on: [a, b], script: 'true'}
        """
    )
    assert build.task("b").depends_on == ("a",)
    assert build.task("c").depends_on == ("a", "b")


def test_an_empty_depends_on_list_means_no_dependencies() -> None:
    assert only_task("task: {depends_on: [], script: 'true'}").depends_on == ()


def test_an_unknown_dependency_is_refused() -> None:
    message = refusal("b_task: {depends_on: a, script: 'true'}")
    assert message == 'task "b": "depends_on" names unknown task "a"'


def test_a_dependency_cycle_is_refused() -> None:
    message = refusal(
        """
        a_task: {depends_on: b}
        b_task: {depends_on: a}
        """
    )
    assert message == 'task "a": "depends_on" forms a cycle: a -> b -> a'


# --- isolation -----------------------------------------------------------------------------


def isolation_of(isolation_yaml: str) -> object:
    task = only_task(f"task: {{persistent_worker: {{isolation: {isolation_yaml}}}}}")
    return task.isolation


def test_a_container_isolation_with_string_and_map_volumes() -> None:
    isolation = isolation_of(
        "{container: {image: debian, cpu: 1.5, memory: 2G,"
        " volumes: ['/a:/b', '/c:/d:ro', {source: /e, target: /f, readonly: true}]}}"
    )
    assert isolation == ContainerIsolation(
        image="debian",
        cpu=1.5,
        memory=2048,
        volumes=(
            ContainerVolume("/a", "/b"),
            ContainerVolume("/c", "/d", read_only=True),
            ContainerVolume("/e", "/f", read_only=True),
        ),
    )


def test_a_container_gets_the_cirrus_cpu_and_memory_defaults() -> None:
    assert isolation_of("{container: {image: debian}}") == ContainerIsolation(
        image="debian", cpu=CONTAINER_DEFAULT_CPU, memory=CONTAINER_DEFAULT_MEMORY_MIB
    )
    assert (CONTAINER_DEFAULT_CPU, CONTAINER_DEFAULT_MEMORY_MIB) == (2.0, 4096)


def test_a_bad_container_volume_is_refused() -> None:
    message = refusal(
        "task: {persistent_worker: {isolation: {container: {volumes: ['/a:/b:rw']}}}}"
    )
    assert message == (
        'task "main": "persistent_worker.isolation.container.volumes[0]"'
        " must be source:target or source:target:ro"
    )


def test_a_tart_isolation_with_every_key() -> None:
    isolation = isolation_of(
        "{tart: {image: img, user: admin, password: pw, port: 2222, cpu: 4, memory: 8192,"
        " softnet: true, display: 1024x768, disk_size: 50, nested: true,"
        " volumes: [{name: src, source: /s, target: /t, readonly: true}, {source: /x}]}}"
    )
    assert isolation == TartIsolation(
        image="img",
        user="admin",
        password="pw",
        port=2222,
        cpu=4,
        memory=8192,
        softnet=True,
        display="1024x768",
        disk_size=50,
        nested=True,
        volumes=(TartVolume("src", "/s", "/t", read_only=True), TartVolume(source="/x")),
    )


@pytest.mark.parametrize(
    ("written", "mib"), [("4G", 4096), ("4096M", 4096), ("4096", 4096), ("12", 12288)]
)
def test_memory_takes_cirrus_units(written: str, mib: int) -> None:
    isolation = isolation_of(f"{{tart: {{image: i, memory: {written}}}}}")
    assert isinstance(isolation, TartIsolation)
    assert isolation.memory == mib


def test_a_bad_memory_unit_names_the_task_and_key() -> None:
    message = refusal("x_task: {persistent_worker: {isolation: {tart: {memory: 4Q}}}}")
    assert message.startswith('task "x": "persistent_worker.isolation.tart.memory" is invalid')


def test_a_tart_volume_needs_a_source() -> None:
    message = refusal("task: {persistent_worker: {isolation: {tart: {volumes: [{target: /t}]}}}}")
    assert '"persistent_worker.isolation.tart.volumes[0].source" is required' in message


def test_a_vetu_isolation_with_bridged_networking() -> None:
    isolation = isolation_of(
        "{vetu: {image: img, user: u, password: p, port: 22, cpu: 2, memory: 4G,"
        " disk_size: 20, networking: {bridged: {interface: br0}}}}"
    )
    assert isolation == VetuIsolation(
        image="img",
        user="u",
        password="p",
        port=22,
        cpu=2,
        memory=4096,
        disk_size=20,
        networking=VetuBridged("br0"),
    )


def test_vetu_host_networking_and_the_default() -> None:
    assert isolation_of("{vetu: {networking: {host: {}}}}") == VetuIsolation(networking=VetuHost())
    assert isolation_of("{vetu: {image: i}}") == VetuIsolation(image="i", networking=None)


def test_two_isolations_at_once_are_refused() -> None:
    message = refusal("task: {persistent_worker: {isolation: {tart: {}, vetu: {}}}}")
    assert "must hold exactly one of container, tart or vetu" in message


def test_resources_must_be_numbers() -> None:
    message = refusal("task: {persistent_worker: {resources: {tart-vms: many}}}")
    assert message == (
        'task "main": "persistent_worker.resources.tart-vms" must be a non-negative number'
    )


# --- refusals ------------------------------------------------------------------------------


def test_an_unknown_task_key_names_the_task_and_key() -> None:
    message = refusal("build_task: {scriptt: make}")
    assert message == 'task "build": unknown key "scriptt"'


def test_an_unknown_key_in_an_explicitly_named_task_uses_that_name() -> None:
    assert refusal("task: {name: build, only_if: 'true'}") == 'task "build": unknown key "only_if"'


def test_an_unknown_nested_key_names_its_path() -> None:
    message = refusal("task: {persistent_worker: {isolation: {tart: {imag: x}}}}")
    assert message == 'task "main": unknown key "persistent_worker.isolation.tart.imag"'


def test_an_unknown_key_in_an_on_failure_block_is_refused() -> None:
    assert (
        refusal("task: {on_failure: {cache: {}}}") == 'task "main": unknown key "on_failure.cache"'
    )


def test_an_unknown_top_level_key_is_refused() -> None:
    assert refusal("container: {image: x}\ntask: {script: 'true'}") == (
        'top level: unknown key "container"'
    )


def test_an_isolation_key_unknown_to_the_subset_is_refused() -> None:
    message = refusal("task: {persistent_worker: {isolation: {parallels: {}}}}")
    assert message == 'task "main": unknown key "persistent_worker.isolation.parallels"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("task: {script: {a: b}}", '"script" must be a string'),
        ("task: {script: []}", '"script" must not be empty'),
        ("task: {script: null}", '"script" must be a string'),
        ("task: {env: [A]}", '"env" must be a mapping'),
        ("task: {env: {A: [1]}}", '"env.A" must be a string'),
        ("task: {persistent_worker: {labels: {a: {b: c}}}}", '"persistent_worker.labels.a"'),
        ("task: {persistent_worker: {isolation: {tart: {cpu: 1.5}}}}", "must be a whole number"),
        ("task: {persistent_worker: {isolation: {tart: {port: 70000}}}}", "up to 65535"),
        ("task: {persistent_worker: {isolation: {tart: {softnet: maybe}}}}", "true or false"),
        ("task: {timeout_in: 30}", '"timeout_in" must be a duration'),
        ("task: {depends_on: {a: b}}", '"depends_on" must be a string'),
        ("task: {a_file: {path: x}}", "exactly one of from_contents or variable_name"),
        ("task: {a_file: {variable_name: X}}", '"a_file.path" is required'),
        ("task: {a_artifacts: {path: x, paths: [y]}}", "exactly one of path or paths"),
        ("task: {a_artifacts: {paths: x}}", '"a_artifacts.paths" must be a list'),
        ("task: {on_failure: [x]}", '"on_failure" must be a mapping'),
        ("task: {_script: x}", 'unknown key "_script"'),
        ("task: [x]", '"task" must be a mapping'),
    ],
)
def test_wrong_types_are_refused_with_the_key(text: str, expected: str) -> None:
    message = refusal(text)
    assert message.startswith('task "main": ')
    assert expected in message


def test_a_duplicate_key_inside_a_task_is_refused() -> None:
    message = refusal("task:\n  script: a\n  script: b\n")
    assert message == 'task "main": duplicate key "script"'


def test_a_duplicate_top_level_env_is_refused() -> None:
    assert refusal("env: {}\nenv: {}\ntask: {script: x}") == 'top level: duplicate key "env"'


def test_an_empty_configuration_has_no_tasks() -> None:
    assert refusal("") == "top level: no tasks defined"
    assert refusal("env: {A: b}") == "top level: no tasks defined"


def test_invalid_yaml_is_refused_at_top_level() -> None:
    assert refusal("task: [unclosed").startswith("top level: invalid YAML")


def test_a_configuration_that_is_not_a_mapping_is_refused() -> None:
    assert refusal("- task") == "top level: the configuration must be a mapping"


def test_a_recursive_alias_is_refused() -> None:
    assert "recursive YAML alias" in refusal("task: &a {script: x, more: *a}")
