"""The worker's pure cache and artifact rules: key, layout, upload decision, glob matching."""

from __future__ import annotations

import hashlib

import pytest

from domain.artifact_paths import (
    PathOutsideWorkingDir,
    expand_braces,
    match_files,
    relative_pattern,
    static_root,
)
from domain.protocol import CacheInstruction
from domain.worker_caches import (
    CacheFolderError,
    CacheLayout,
    RestoredCache,
    cache_key,
    cache_layout,
    instruction_folders,
    upload_skip_reason,
)

ENV = {"CIRRUS_TASK_NAME": "test", "CI_NODE_INDEX": "2"}


def test_a_fingerprint_key_is_the_cache_key_as_it_is() -> None:
    instruction = CacheInstruction(fingerprint_key="my-key", fingerprint_scripts=("x",))
    assert cache_key("pip", instruction, ENV, b"ignored") == "my-key"


def test_the_key_hashes_the_fingerprint_output_after_the_cache_name() -> None:
    instruction = CacheInstruction(fingerprint_scripts=("cat requirements.txt",))
    expected = hashlib.sha256(b"requests==2\n").hexdigest()
    assert cache_key("pip", instruction, ENV, b"requests==2\n") == f"pip-{expected}"


def test_without_a_fingerprint_the_key_hashes_task_name_then_node_index() -> None:
    expected = hashlib.sha256(b"test2").hexdigest()
    assert cache_key("pip", CacheInstruction(), ENV) == f"pip-{expected}"


def test_folder_and_folders_are_both_taken_once_each() -> None:
    instruction = CacheInstruction(folder="a", folders=("b", "a", " "))
    assert instruction_folders(instruction) == ("a", "b")


def test_one_folder_is_its_own_base_and_several_are_rooted_at_the_working_dir() -> None:
    assert cache_layout(("/home/u/.cache/pip",), "/w") == CacheLayout("/home/u/.cache/pip", (".",))
    assert cache_layout(("deps",), "/w") == CacheLayout("/w/deps", (".",))
    assert cache_layout(("a", "/w/b/c"), "/w") == CacheLayout("/w", ("a", "b/c"))


def test_several_folders_outside_the_working_dir_are_refused_with_the_agents_message() -> None:
    with pytest.raises(CacheFolderError, match="points above the current working directory"):
        cache_layout(("a", "/tmp/b"), "/w")


def restored(hit: bool, reupload: bool, digest: str | None) -> RestoredCache:
    return RestoredCache("pip", "pip-k", CacheLayout("/w/deps", (".",)), hit, reupload, digest)


def test_the_upload_is_skipped_after_a_hit_without_reupload_on_changes() -> None:
    reason = upload_skip_reason(restored(True, False, None), False, None)
    assert reason == "Skipping change detection for pip cache!"


def test_an_unchanged_folder_after_a_hit_is_not_uploaded_and_a_changed_one_is() -> None:
    cache = restored(True, True, "abc")
    assert (
        upload_skip_reason(cache, False, "abc") == "Cache pip hasn't changed! Skipping uploading..."
    )
    assert upload_skip_reason(cache, False, "def") is None


def test_empty_folders_are_not_uploaded_and_a_miss_with_content_is() -> None:
    reason = upload_skip_reason(restored(False, False, None), True, None)
    assert reason == "All cache folders (/w/deps) are empty! Skipping uploading ..."
    assert upload_skip_reason(restored(False, False, None), False, None) is None


FILES = ("a.xml", "out/x.xml", "out/sub/y.xml", "out/sub/y.txt", "other/z.xml")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("**/*.xml", ("a.xml", "other/z.xml", "out/sub/y.xml", "out/x.xml")),
        ("out/**/*.xml", ("out/sub/y.xml", "out/x.xml")),
        ("out/*.xml", ("out/x.xml",)),
        ("out/**", ("out/sub/y.txt", "out/sub/y.xml", "out/x.xml")),
        ("out/sub/y.{txt,xml}", ("out/sub/y.txt", "out/sub/y.xml")),
        ("out/sub/y.[tx]?t", ("out/sub/y.txt",)),
        ("missing/*.log", ()),
    ],
)
def test_globs_match_as_doublestar_does(pattern: str, expected: tuple[str, ...]) -> None:
    assert match_files(pattern, FILES) == expected


def test_absolute_patterns_inside_the_working_dir_become_relative_and_others_are_refused() -> None:
    assert relative_pattern("/w/out/*.xml", "/w") == "out/*.xml"
    assert relative_pattern("./out/x.xml", "/w") == "out/x.xml"
    with pytest.raises(PathOutsideWorkingDir, match="outside of CIRRUS_WORKING_DIR"):
        relative_pattern("/etc/hostname", "/w")
    with pytest.raises(PathOutsideWorkingDir):
        relative_pattern("../x", "/w")


def test_the_listing_starts_at_the_fixed_directories_before_the_first_glob() -> None:
    assert static_root("out/sub/*.xml") == "out/sub"
    assert static_root("out/**/x") == "out"
    assert static_root("*.xml") == "."
    assert set(expand_braces("a{b,c{d,e}}")) == {"ab", "acd", "ace"}
