"""The whole pipeline: a configuration tree becomes the build Cirrus would have created."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import pytest

from adapters.cirrus_config.yaml_source import load_yaml
from domain.build import BuildConfigError, BuildSpec, TaskSpec
from domain.cirrus_config.context import BuildContext, ForeignSecretError, SecretError
from domain.cirrus_config.instances import MappedInstances
from domain.cirrus_config.nodes import CirrusConfigError, Pairs, Scalar
from domain.cirrus_config.parse import parse_config
from domain.isolation import ContainerIsolation
from domain.protocol import CloneInstruction, Command, ScriptInstruction

PUSH = {
    "CIRRUS_BRANCH": "main",
    "CIRRUS_DEFAULT_BRANCH": "main",
    "CIRRUS_REPO_FULL_NAME": "octo/cat",
}


class FakeSecrets:
    """Decrypts only ``ENCRYPTED[good]`` of ``octo/cat``; ``ENCRYPTED[!...!]`` is foreign."""

    def decrypt(self, value: str, repository: str) -> str:
        if value == "ENCRYPTED[good]" and repository == "octo/cat":
            return "plain"
        if value.startswith("ENCRYPTED[!"):
            raise ForeignSecretError("made by hosted Cirrus CI")
        raise SecretError("not ours")


def build(
    text: str, environment: Mapping[str, str] = PUSH, changed: tuple[str, ...] | None = None
) -> BuildSpec:
    context = BuildContext(
        environment, MappedInstances(), FakeSecrets(), changed_files=changed, build_id="42"
    )
    return parse_config([load_yaml(textwrap.dedent(text))], context)


def only(text: str, environment: Mapping[str, str] = PUSH) -> TaskSpec:
    (task,) = build(text, environment).tasks
    return task


def test_every_task_starts_with_the_automatic_clone_command() -> None:
    task = only("container: {image: alpine}\ntask:\n  script: make\n")
    assert task.commands == (
        Command("clone", CloneInstruction()),
        Command("main", ScriptInstruction(("make",))),
    )


def test_a_clone_script_replaces_the_automatic_clone() -> None:
    task = only("task:\n  clone_script: git clone --depth 1 x .\n  script: make\n")
    assert [c.name for c in task.commands] == ["clone", "main"]
    assert task.commands[0].instruction == ScriptInstruction(("git clone --depth 1 x .",))


def test_top_level_settings_are_defaults_for_every_task() -> None:
    spec = build("""
        container: {image: debian, cpu: 4}
        env: {A: top, B: top}
        timeout_in: 90m
        a_task:
          env: {B: task}
          script: echo
        b_task:
          container: {image: alpine}
          script: echo
        """)
    a, b = spec.tasks
    assert (a.environment["A"], a.environment["B"]) == ("top", "task")
    assert a.timeout_seconds == b.timeout_seconds == 5400
    assert isinstance(b.isolation, ContainerIsolation)
    assert (b.isolation.image, b.isolation.cpu) == ("alpine", 4)


def test_names_and_environment_are_expanded_with_the_instance_os() -> None:
    task = only("""
        container: {image: alpine}
        task:
          name: Tests ($CIRRUS_OS, $FLAVOUR, $CIRRUS_BRANCH)
          env:
            FLAVOUR: fast
            PATH: $HOME/bin:$PATH
            DIR: $CIRRUS_WORKING_DIR/out
            OWN: $FLAVOUR-$CIRRUS_BRANCH
        """)
    assert task.name == "Tests (linux, fast, main)"
    env = task.environment
    assert env["PATH"] == "$HOME/bin:$PATH"  # the worker's shell knows $HOME
    assert env["OWN"] == "fast-main"
    assert (env["CIRRUS_OS"], env["CIRRUS_ARCH"]) == ("linux", "amd64")


def test_automatic_variables_name_and_number_the_tasks() -> None:
    spec = build("""
        a_task: {alias: first, script: x}
        skipped_task: {only_if: "false", script: x}
        b_task: {script: x}
        """)
    a, b = spec.tasks
    assert a.environment["CIRRUS_TASK_NAME"] == "a"
    assert a.environment["CIRRUS_TASK_NAME_ALIAS"] == "first"
    assert [t.environment["CI_NODE_INDEX"] for t in spec.tasks] == ["0", "1"]
    assert b.environment["CI_NODE_TOTAL"] == "2"
    assert a.environment["CIRRUS_BUILD_ID"] == "42"
    assert a.environment["CONTINUOUS_INTEGRATION"] == "true"


def test_only_if_false_leaves_the_task_out_and_skip_true_keeps_it_with_a_reason() -> None:
    spec = build(
        """
        pr_task:
          only_if: $CIRRUS_PR != ''
          script: x
        docs_task:
          skip: "!changesInclude('docs/**')"
          script: x
        """,
        changed=("src/main.c",),
    )
    (docs,) = spec.tasks
    assert docs.name == "docs"
    assert "changesInclude" in docs.skip_reason


def test_a_dependency_on_a_task_left_out_by_only_if_is_dropped() -> None:
    spec = build("""
        lint_task: {only_if: $CIRRUS_TAG != '', script: x}
        test_task: {depends_on: lint, script: x}
        """)
    assert spec.tasks[0].depends_on == ()


def test_dependencies_name_tasks_by_name_or_alias() -> None:
    spec = build("""
        task: {name: Build linux, alias: build, script: x}
        task: {name: Build mac, alias: build, script: x}
        deploy_task: {depends_on: [build], script: x}
        """)
    assert spec.task("deploy").depends_on == ("Build linux", "Build mac")


def test_an_unknown_dependency_is_refused_naming_both_tasks() -> None:
    with pytest.raises(CirrusConfigError, match=r'no task "nope", but task "a" depends on it'):
        build("a_task: {depends_on: nope, script: x}\n")


def test_a_dependency_cycle_is_refused() -> None:
    with pytest.raises(BuildConfigError, match="cycle"):
        build("a_task: {depends_on: b, script: x}\nb_task: {depends_on: a, script: x}\n")


def test_conditions_set_allow_failures_manual_and_auto_cancellation() -> None:
    task = only(
        """
        task:
          allow_failures: $CIRRUS_BRANCH == 'dev'
          trigger_type: manual
          script: x
        """,
        {**PUSH, "CIRRUS_BRANCH": "dev"},
    )
    assert task.allow_failures is True
    assert task.manual is True
    assert task.auto_cancellation is True  # not the default branch


def test_required_pr_labels_hold_a_pull_request_task_until_it_has_them() -> None:
    text = "task:\n  required_pr_labels: [ready]\n  script: x\n"
    pull = {**PUSH, "CIRRUS_PR": "7", "CIRRUS_PR_LABELS": "bug"}
    assert only(text, pull).manual is True
    assert only(text, {**pull, "CIRRUS_PR_LABELS": "bug,ready"}).manual is False
    assert only(text).manual is False


def test_encrypted_values_are_checked_and_kept_encrypted() -> None:
    task = only('task:\n  env: {TOKEN: "ENCRYPTED[good]"}\n  script: x\n')
    assert task.environment["TOKEN"] == "ENCRYPTED[good]"


def test_a_value_this_controller_cannot_decrypt_is_refused_naming_the_variable() -> None:
    with pytest.raises(CirrusConfigError, match=r'"TOKEN"'):
        build('task:\n  env: {TOKEN: "ENCRYPTED[deadbeef]"}\n  script: x\n')


def test_a_hosted_cirrus_secret_leaves_its_variable_unset_with_a_notice() -> None:
    task = only("""
        task:
          env:
            TOKEN: ENCRYPTED[!0123abcd!]
            HEADER: "Bearer ENCRYPTED[!0123abcd!]"
            PLAIN: kept
          script: x
    """)
    assert "TOKEN" not in task.environment
    assert "HEADER" not in task.environment
    assert task.environment["PLAIN"] == "kept"
    assert len(task.notices) == 2
    assert task.notices[0].startswith('"TOKEN" is not set')
    assert "cirrus secret encrypt" in task.notices[0]


def test_a_foreign_secret_in_a_task_left_out_by_only_if_changes_nothing() -> None:
    spec = build("""
        task:
          name: kept
          script: x
        task:
          name: release
          only_if: $CIRRUS_TAG != ''
          env: {TOKEN: "ENCRYPTED[!0123abcd!]"}
          script: x
    """)
    assert [task.name for task in spec.tasks] == ["kept"]
    assert spec.tasks[0].notices == ()


def test_a_pipe_is_one_task_whose_steps_run_in_order_in_the_first_image() -> None:
    task = only("""
        pipe:
          name: Build
          resources: {cpu: 3}
          steps:
            - image: gradle
              build_script: gradle build
            - image: alpine
              check_script: ls
        """)
    assert [c.name for c in task.commands] == ["clone", "build", "check"]
    assert isinstance(task.isolation, ContainerIsolation)
    assert (task.isolation.image, task.isolation.cpu) == ("gradle", 3)


def test_a_pipe_step_without_instructions_is_refused() -> None:
    with pytest.raises(CirrusConfigError, match="without scripts"):
        build("pipe:\n  steps:\n    - image: alpine\n")


def test_a_docker_builder_runs_on_a_linux_machine_by_default() -> None:
    task = only("docker_builder:\n  build_script: docker build .\n")
    assert task.environment["CIRRUS_OS"] == "linux"
    assert task.labels["os"] == "linux"


def test_keys_without_a_meaning_here_are_accepted_as_cirrus_accepted_them() -> None:
    task = only("task:\n  stateful: true\n  execution_lock: x\n  unknown: key\n  script: x\n")
    assert [c.name for c in task.commands] == ["clone", "main"]


def test_starlark_tasks_are_appended_to_the_yaml_ones() -> None:
    starlark = Pairs((("star_task", Pairs((("script", Scalar("echo", "echo")),))),))
    context = BuildContext(PUSH, MappedInstances())
    spec = parse_config([load_yaml("yaml_task: {script: x}\n"), starlark], context)
    assert [t.name for t in spec.tasks] == ["yaml", "star"]


def test_a_build_whose_tasks_are_all_left_out_is_empty() -> None:
    assert build("task: {only_if: 'false', script: x}\n").tasks == ()


def test_a_configuration_without_tasks_is_refused() -> None:
    with pytest.raises(BuildConfigError, match="no tasks"):
        build("env: {A: b}\n")


def test_matrix_rows_become_separate_tasks() -> None:
    spec = build("""
        task:
          name: test $V
          env:
            matrix:
              - V: "1"
              - V: "2"
          script: x
        """)
    assert [t.name for t in spec.tasks] == ["test 1", "test 2"]
