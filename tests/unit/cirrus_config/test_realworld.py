"""Real ``.cirrus.yml`` files of public projects parse into the builds Cirrus made of them.

The build environment is that of a push to the repository's default branch, as
``realworld_corpus.py`` submits it (from ``realworld/SOURCES.md``). The expectations below are
reasoned from each file and the original parser's rules, not taken from this parser's output.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from adapters.cirrus_config.parse_build import parse_build
from domain.build import BuildSpec, TaskSpec
from domain.cirrus_config.nodes import CirrusConfigError
from domain.isolation import ContainerIsolation, NoneIsolation, TartIsolation
from domain.protocol import (
    ArtifactsInstruction,
    CacheInstruction,
    ExecutionBehaviour,
    ScriptInstruction,
)

COMPAT = Path(__file__).resolve().parents[4] / "shared" / "compat"
CORPUS = COMPAT / "realworld"
FILES = sorted(CORPUS.glob("*.yml"))
# Its ``Lint`` task came from the repository's ``.cirrus.star``, which the corpus does not hold.
NEEDS_STARLARK = "cirruslabs__orchard"

pytestmark = pytest.mark.skipif(not FILES, reason=f"no real-world corpus in {CORPUS}")


class EverySecret:
    """A controller that could decrypt the projects' values (they were Cirrus CI's)."""

    def decrypt(self, value: str, repository: str) -> str:
        return "decrypted"


def push_environment(path: Path) -> dict[str, str]:
    sys.path.insert(0, str(COMPAT))
    try:
        # The harness is the one source of this environment (it is a script, not a package).
        realworld_corpus = importlib.import_module("realworld_corpus")
    finally:
        sys.path.remove(str(COMPAT))
    meta = realworld_corpus.read_sources(CORPUS)
    environment: dict[str, str] = realworld_corpus.build_environment(path, meta)
    return environment


def parsed(stem: str) -> BuildSpec:
    path = CORPUS / f"{stem}.yml"
    return parse_build(path.read_text(), push_environment(path), secrets=EverySecret())


def names(task: TaskSpec) -> list[str]:
    return [command.name for command in task.commands]


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.stem != NEEDS_STARLARK], ids=lambda path: path.stem
)
def test_every_real_world_file_parses(path: Path) -> None:
    build = parse_build(path.read_text(), push_environment(path), secrets=EverySecret())
    for task in build.tasks:
        assert task.commands[0].name == "clone"


def test_orchard_without_its_starlark_names_the_missing_dependency() -> None:
    with pytest.raises(CirrusConfigError, match=r'no task "Lint", but task "Release Binaries'):
        parsed(NEEDS_STARLARK)


def test_zstd_one_freebsd_task_from_a_one_row_instance_matrix() -> None:
    (task,) = parsed("facebook__zstd").tasks
    assert task.name == "FreeBSD (shortest)"
    assert names(task) == ["clone", "install", "main"]
    assert task.labels["os"] == "freebsd"
    assert task.environment["CIRRUS_OS"] == "freebsd"
    assert task.commands[2].instruction == ScriptInstruction(
        ('MOREFLAGS="-Werror" gmake -j all', "gmake shortest", "")
    )


def test_nlohmann_json_top_level_arm_container_applies_to_the_check_task() -> None:
    (task,) = parsed("nlohmann__json").tasks
    assert task.name == "check"
    assert names(task) == ["clone", "check"]
    assert isinstance(task.isolation, ContainerIsolation)
    assert task.isolation.image == "gcc:latest"
    assert (task.environment["CIRRUS_OS"], task.environment["CIRRUS_ARCH"]) == ("linux", "arm64")
    script = task.commands[1].instruction
    assert isinstance(script, ScriptInstruction)
    assert len(script.scripts) == 12


def test_vim_matrix_name_wins_and_on_failure_artifacts_keep_their_behaviour() -> None:
    (task,) = parsed("vim__vim").tasks
    assert task.name == "FreeBSD 15.0"
    assert task.timeout_seconds == 20 * 60
    assert names(task)[:4] == ["clone", "install", "build", "test"]
    failed = task.commands[-1]
    assert failed.execution_behaviour is ExecutionBehaviour.ON_FAILURE
    assert isinstance(failed.instruction, ArtifactsInstruction)
    assert failed.instruction.type == "application/octet-stream"
    assert task.environment["CIRRUS_CLONE_DEPTH"] == "3"
    assert task.environment["FEATURES"] == "huge"


def test_openvdb_three_tasks_share_the_top_level_container() -> None:
    build = parsed("AcademySoftwareFoundation__openvdb")
    assert [t.name for t in build.tasks] == ["trailing_spaces", "spaces_not_tabs", "doxygen"]
    for task in build.tasks:
        assert names(task) == ["clone", "test"]
        assert isinstance(task.isolation, ContainerIsolation)
        assert task.isolation.image == "node:latest"
    assert [t.environment["CI_NODE_INDEX"] for t in build.tasks] == ["0", "1", "2"]


def test_soci_matrix_rows_set_name_and_env_and_branch_is_expanded() -> None:
    build = parsed("SOCI__soci")
    assert [t.name for t in build.tasks] == [
        "Cirrus CI / Empty FreeBSD",
        "Cirrus CI / SQLite3 FreeBSD",
    ]
    first, second = build.tasks
    assert first.environment["SOCI_CI_BACKEND"] == "empty"
    assert second.environment["SOCI_CI_BACKEND"] == "sqlite3"
    assert first.environment["SOCI_CI_BRANCH"] == "master"
    assert first.skip_reason == ""  # changed files unknown: changesIncludeOnly is false
    assert names(first) == ["clone", "install", "before_build", "build", "test"]


def test_haproxy_only_if_matches_the_default_branch_and_on_failure_debug_runs_last() -> None:
    (task,) = parsed("haproxy__haproxy").tasks
    assert task.name == "FreeBSD"
    assert names(task) == ["clone", "install", "main", "test", "debug"]
    assert task.commands[-1].execution_behaviour is ExecutionBehaviour.ON_FAILURE


def test_neovim_unknown_variable_in_only_if_keeps_the_task() -> None:
    build = parsed("neovim__neovim")
    assert [t.name for t in build.tasks] == ["FreeBSD", "external_deps"]
    freebsd, deps = build.tasks
    assert freebsd.timeout_seconds == 30 * 60
    assert freebsd.environment["LANG"] == "en_US.UTF-8"
    assert names(deps) == ["clone", "deps", "build"]
    assert isinstance(deps.isolation, ContainerIsolation)


def test_snappy_macos_instance_and_folded_env_values() -> None:
    (task,) = parsed("3-manifolds__SnapPy").tasks
    assert task.name == "Build wheels on macOS arm64."
    assert isinstance(task.isolation, TartIsolation)
    assert task.timeout_seconds == 40 * 60
    assert names(task) == ["clone", "install_pre_requirements", "run_cibuildwheel", "wheels"]
    assert task.environment["CIBW_TEST_COMMAND"] == (
        "python -m snappy.test --skip-modern-opengl --skip-gui"
    )
    assert task.environment["CIBW_BEFORE_TEST"].startswith("pip install cython low_index && ")
    assert task.environment["CIRRUS_OS"] == "darwin"


def test_mockall_merge_key_brings_env_cache_and_scripts_with_an_upload_last() -> None:
    build = parsed("asomers__mockall")
    assert [t.name for t in build.tasks] == ["MSRV", "stable", "nightly"]
    msrv, _stable, nightly = build.tasks
    assert names(msrv) == [
        "clone", "cargo_lock", "cargo", "build", "doc", "before_cache", "Upload 'cargo' cache",
    ]  # fmt: skip
    cache = msrv.commands[2].instruction
    assert isinstance(cache, CacheInstruction)
    assert cache.folders == ("$CARGO_HOME/registry",)
    assert cache.reupload_on_changes is False  # it has a fingerprint_script
    assert nightly.environment["CARGO_ARGS"] == "--all-features"
    assert nightly.environment["RUSTFLAGS"] == "-Dwarnings"


def test_jemalloc_four_matrices_multiply_into_sixteen_tasks() -> None:
    build = parsed("jemalloc__jemalloc")
    assert len(build.tasks) == 16
    assert {t.name for t in build.tasks} == {"15-CURRENT"}
    combos = {
        (t.environment["DEBUG_CONFIG"], t.environment["PROF_CONFIG"], t.environment["CC"])
        for t in build.tasks
    }
    assert len(combos) == 8
    assert build.tasks[-1].environment["CI_NODE_TOTAL"] == "16"


def test_libarchive_matrix_instances_and_a_windows_container() -> None:
    build = parsed("libarchive__libarchive")
    assert [t.name for t in build.tasks] == [
        "15.0-RELEASE (UFS) cmake",
        "15.0-RELEASE (ZFS)",
        "14.3-RELEASE",
        "Windows_Cygwin",
    ]
    assert build.tasks[1].environment["BS"] == "autotools"
    assert isinstance(build.tasks[0].isolation, NoneIsolation)
    windows = build.tasks[3]
    assert windows.environment["CIRRUS_OS"] == "windows"
    assert windows.environment["ARCH"] == "amd64"
    assert names(windows) == ["clone", "prepare", "configure", "build", "test", "install"]


def test_libc_matrix_env_overrides_the_task_env() -> None:
    build = parsed("rust-lang__libc")
    assert [t.name for t in build.tasks] == [
        "nightly freebsd-15 i686",
        "nightly freebsd-14 x86_64",
        "nightly freebsd-15 x86_64",
    ]
    assert [t.environment["TARGET"] for t in build.tasks] == [
        "i686-unknown-freebsd",
        "x86_64-unknown-freebsd",
        "x86_64-unknown-freebsd",
    ]
    assert build.tasks[0].environment["HOME"] == "/tmp"


def test_ghcup_keeps_encrypted_values_encrypted_and_worker_variables_for_the_worker() -> None:
    (task,) = parsed("haskell__ghcup-hs").tasks
    assert task.name == "build"
    assert task.environment["AWS_ACCESS_KEY_ID"].startswith("ENCRYPTED[")
    assert task.environment["GITHUB_WORKSPACE"] == "${CIRRUS_WORKING_DIR}"
    assert task.environment["ARCH"] == "64"
    assert task.labels["os"] == "freebsd"
    assert names(task) == ["clone", "install", "main", "binaries"]


def test_checkstyle_top_level_only_if_leaves_a_push_without_tasks() -> None:
    assert parsed("checkstyle__checkstyle").tasks == ()


def test_electrum_depends_on_a_name_that_a_matrix_row_gave() -> None:
    build = parsed("spesmilo__electrum")
    linter = "linter: Flake8 Mandatory"
    assert linter in [t.name for t in build.tasks]
    dependants = [t for t in build.tasks if linter in t.depends_on]
    assert dependants
