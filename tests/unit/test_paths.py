"""Lexical cleaning of volume source paths, as Go's ``filepath.Clean`` (spec §5.4)."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.paths import clean_path, clean_volume_source

# Go's own table of Clean cases (path/filepath tests on Unix) and its documented examples.
GO_CLEAN_CASES = [
    ("abc", "abc"),
    ("abc/def", "abc/def"),
    ("a/b/c", "a/b/c"),
    (".", "."),
    ("..", ".."),
    ("../..", "../.."),
    ("../../abc", "../../abc"),
    ("/abc", "/abc"),
    ("/", "/"),
    ("", "."),
    ("abc/", "abc"),
    ("abc/def/", "abc/def"),
    ("a/b/c/", "a/b/c"),
    ("./", "."),
    ("../", ".."),
    ("../../", "../.."),
    ("/abc/", "/abc"),
    ("abc//def//ghi", "abc/def/ghi"),
    ("//abc", "/abc"),
    ("///abc", "/abc"),
    ("//abc//", "/abc"),
    ("abc//", "abc"),
    ("abc/./def", "abc/def"),
    ("/./abc/def", "/abc/def"),
    ("abc/.", "abc"),
    ("abc/def/ghi/../jkl", "abc/def/jkl"),
    ("abc/def/../ghi/../jkl", "abc/jkl"),
    ("abc/def/..", "abc"),
    ("abc/def/../..", "."),
    ("/abc/def/../..", "/"),
    ("abc/def/../../..", ".."),
    ("/abc/def/../../..", "/"),
    ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
    ("/../abc", "/abc"),
    ("abc/./../def", "def"),
    ("abc//./../def", "def"),
    ("abc/../../././../def", "../../def"),
    # Examples of the Go documentation of Clean.
    ("a/c", "a/c"),
    ("a//c", "a/c"),
    ("a/c/.", "a/c"),
    ("a/c/b/..", "a/c"),
    ("/../a/c", "/a/c"),
    ("/../a/b/../././/c", "/a/c"),
]


@pytest.mark.parametrize(("path", "expected"), GO_CLEAN_CASES)
def test_clean_path_gives_what_go_clean_gives(path: str, expected: str) -> None:
    assert clean_path(path) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/tmp", "/tmp"),
        ("/tmp/subdir", "/tmp/subdir"),
        ("/tmp/../../etc/passwd", "/etc/passwd"),
        ("/var/cache/", "/var/cache/"),
        ("/var/cache/subdir", "/var/cache/subdir"),
        ("/var/cache", "/var/cache"),
        ("/var/cache/../../etc/passwd", "/etc/passwd"),
        ("/tmp/", "/tmp/"),
        ("//tmp", "/tmp"),
        ("/tmp/.", "/tmp"),
        ("/var/cache/a/../b", "/var/cache/b"),
    ],
)
def test_every_cleaned_column_of_the_volume_table_holds(source: str, expected: str) -> None:
    assert clean_volume_source(source) == expected


def test_a_volume_source_keeps_one_trailing_slash_however_many_it_had() -> None:
    assert clean_volume_source("/var/cache//") == "/var/cache/"
    assert clean_volume_source("/var/cache/./") == "/var/cache/"


def test_the_root_volume_source_stays_a_single_slash() -> None:
    assert clean_volume_source("/") == "/"
    assert clean_volume_source("///") == "/"
    assert clean_volume_source("/../") == "/"


def test_a_relative_source_that_cleans_to_the_current_directory_keeps_its_slash() -> None:
    assert clean_volume_source("a/../") == "./"


def test_an_empty_volume_source_cleans_to_the_current_directory() -> None:
    assert clean_volume_source("") == "."


paths = st.text(alphabet="/.abé", max_size=20)
segments = st.sampled_from(["", ".", "..", "a", "bc", "é"])
path_segments = st.lists(segments, max_size=10).map("/".join)
any_path = st.one_of(paths, path_segments)


@given(any_path)
def test_cleaning_twice_changes_nothing(path: str) -> None:
    assert clean_path(clean_path(path)) == clean_path(path)


@given(any_path)
def test_cleaning_agrees_with_posix_normpath_except_its_double_slash_root(path: str) -> None:
    expected = posixpath.normpath(path)
    # POSIX lets exactly two leading slashes mean something else; Go does not.
    if expected.startswith("//"):
        expected = expected[1:]
    assert clean_path(path) == expected


@given(any_path)
def test_a_cleaned_path_has_no_empty_or_dot_segments_and_no_trailing_slash(path: str) -> None:
    cleaned = clean_path(path)
    assert cleaned == "/" or not cleaned.endswith("/")
    inner = cleaned.removeprefix("/").split("/")
    assert cleaned in {".", "/"} or ("" not in inner and "." not in inner)


@given(any_path)
def test_a_rooted_cleaned_path_never_climbs_above_the_root(path: str) -> None:
    if path.startswith("/"):
        assert ".." not in clean_path(path).split("/")


@given(any_path)
def test_a_volume_source_ends_with_a_slash_exactly_when_the_original_did(path: str) -> None:
    cleaned = clean_volume_source(path)
    # The root is its own exception: ``/.`` cleans to ``/``, which cannot lose its slash.
    if cleaned != "/":
        assert cleaned.endswith("/") == path.endswith("/")
        assert cleaned.removesuffix("/") == clean_path(path)
