"""A task's instructions become wire commands with Cirrus's names, order and defaults."""

from __future__ import annotations

import textwrap

import pytest

from adapters.cirrus_config.yaml_source import load_yaml
from domain.cirrus_config.commands import (
    Scope,
    effective_fields,
    instruction_kind,
    read_commands,
    upload_cache_commands,
)
from domain.cirrus_config.nodes import CirrusConfigError, Pairs
from domain.protocol import (
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    CacheInstruction,
    Command,
    ExecutionBehaviour,
    FileInstruction,
    ScriptInstruction,
    UploadCacheInstruction,
)

SCOPE = Scope({"HOME_DIR": "/home/ci", "LIST": "[a, b]"}, "t")


def commands(text: str) -> list[Command]:
    tree = load_yaml(textwrap.dedent(text))
    assert isinstance(tree, Pairs)
    found = read_commands(effective_fields(tree), SCOPE)
    return [*found, *upload_cache_commands(found)]


def test_script_keys_are_named_after_their_prefix_and_a_bare_script_is_main() -> None:
    found = commands("build_script: make\nscript: make test\nx_background_script: sleep 9\n")
    assert found == [
        Command("build", ScriptInstruction(("make",))),
        Command("main", ScriptInstruction(("make test",))),
        Command("x", BackgroundScriptInstruction(("sleep 9",))),
    ]


def test_a_multi_line_scalar_script_is_split_into_lines() -> None:
    found = commands("script: |\n  echo a\n  echo b\n")
    assert found[0].instruction == ScriptInstruction(("echo a", "echo b", ""))


def test_non_string_scalars_and_unquoted_colons_become_script_text_and_nulls_are_dropped() -> None:
    found = commands("""
        script:
          - true
          - 1.10
          -
          - echo TODO: fix
        """)
    assert found[0].instruction == ScriptInstruction(("true", "1.10", "echo TODO: fix"))


def test_a_powershell_item_becomes_an_encoded_powershell_command() -> None:
    found = commands("script:\n  - ps: Write-Host hi\n")
    line = found[0].instruction
    assert isinstance(line, ScriptInstruction)
    assert line.scripts[0].startswith("powershell.exe -OutputFormat Text -NoLogo -EncodedCommand ")


def test_a_repeated_instruction_key_counts_once_where_it_last_appears() -> None:
    found = commands("a_script: one\nb_script: two\na_script: three\n")
    assert [(c.name, c.instruction) for c in found] == [
        ("b", ScriptInstruction(("two",))),
        ("a", ScriptInstruction(("three",))),
    ]


def test_a_cache_gets_an_automatic_upload_command_after_everything_else() -> None:
    found = commands("""
        gradle_cache:
          folder: ~/.gradle
          fingerprint_script: cat build.gradle
          populate_script: ./gradlew deps
        build_script: ./gradlew build
        """)
    assert [c.name for c in found] == ["gradle", "build", "Upload 'gradle' cache"]
    assert found[0].instruction == CacheInstruction(
        folder="$HOME/.gradle",
        folders=("$HOME/.gradle",),
        fingerprint_scripts=("cat build.gradle",),
        populate_scripts=("./gradlew deps",),
        reupload_on_changes=False,
    )
    assert found[2].instruction == UploadCacheInstruction("gradle")


def test_a_cache_without_fingerprint_reuploads_on_changes_by_default() -> None:
    found = commands("node_modules_cache:\n  folders: [a, b]\n")
    cache = found[0].instruction
    assert isinstance(cache, CacheInstruction)
    assert cache.folders == ("a", "b")
    assert cache.reupload_on_changes is True


def test_a_cache_upload_inherits_the_behaviour_of_its_cache() -> None:
    found = commands("always:\n  x_cache:\n    folder: x\n")
    assert found[-1] == Command(
        "Upload 'x' cache", UploadCacheInstruction("x"), ExecutionBehaviour.ALWAYS
    )


def test_upload_caches_places_the_uploads_and_replaces_the_automatic_ones() -> None:
    found = commands("""
        a_cache: {folder: a}
        b_cache: {folder: b}
        upload_caches: [b]
        test_script: make test
        """)
    assert [c.name for c in found] == ["a", "b", "Upload 'b' cache", "test"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("upload_caches: [nope]\n", 'no cache with name "nope" is defined'),
        ("x_cache: {}\n", "please specify the folders to cache"),
        ("x_cache: {folder: a, folders: [b]}\n", "either folder: or folders: but not both"),
        ("x_cache: {folder: a, fingerprint_key: k, fingerprint_script: s}\n", "ambiguity"),
        ("x_file: {path: a}\n", '"variable_name" or "from_contents"'),
        ("x_file: {from_contents: a}\n", 'required field "path"'),
    ],
)
def test_invalid_instructions_are_refused_like_the_original(text: str, message: str) -> None:
    with pytest.raises(CirrusConfigError, match=message):
        commands(text)


def test_artifacts_default_to_binary_and_expand_their_paths() -> None:
    found = commands("artifacts:\n  path: $HOME_DIR/out/*.zip\n  type: application/zip\n")
    assert found == [
        Command("binary", ArtifactsInstruction(("/home/ci/out/*.zip",), "application/zip"))
    ]


def test_artifact_paths_that_expand_to_a_flow_list_are_read_as_a_list() -> None:
    found = commands("junit_artifacts:\n  paths: $LIST\n  format: junit\n")
    assert found[0].instruction == ArtifactsInstruction(("a", "b"), "", "junit")


def test_files_come_from_a_variable_without_its_dollar_or_from_contents() -> None:
    found = commands("""
        key_file: {path: /tmp/key, variable_name: $SSH_KEY}
        conf_file: {path: $HOME_DIR/conf, from_contents: "x=1"}
        """)
    assert found == [
        Command("key", FileInstruction("/tmp/key", from_environment_variable="SSH_KEY")),
        Command("conf", FileInstruction("/home/ci/conf", from_contents="x=1")),
    ]


def test_repeated_blocks_stack_and_keep_their_behaviour() -> None:
    found = commands("""
        main_script: make
        on_failure:
          logs_artifacts: {path: log.txt}
        always:
          a_script: echo a
        always:
          b_script: echo b
        on_timeout:
          t_script: echo t
        """)
    assert [(c.name, c.execution_behaviour) for c in found] == [
        ("main", ExecutionBehaviour.ON_SUCCESS),
        ("logs", ExecutionBehaviour.ON_FAILURE),
        ("a", ExecutionBehaviour.ALWAYS),
        ("b", ExecutionBehaviour.ALWAYS),
        ("t", ExecutionBehaviour.ON_TIMEOUT),
    ]


def test_keys_that_are_no_instruction_are_left_to_the_task() -> None:
    assert instruction_kind("depends_on") is None
    assert instruction_kind("fingerprint_script") == "script"
    assert instruction_kind("on_failure") == "on_failure"
    assert commands("name: x\nenv: {A: b}\n") == []
