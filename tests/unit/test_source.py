"""Build sources: their kind, their CIRRUS_* variables and their API JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.source import (
    BuildSource,
    SourceError,
    source_environment,
    source_from_json,
    source_to_json,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_source_is_a_snapshot_git_or_none_by_what_it_can_fetch() -> None:
    assert BuildSource(snapshot="abc", clone_url="https://x/y.git").kind == "snapshot"
    assert BuildSource(clone_url="https://x/y.git").kind == "git"
    assert BuildSource(repository="o/n", branch="main").kind == "none"


def test_a_branch_build_has_the_repository_branch_and_change_variables() -> None:
    source = BuildSource(
        repository="octo/app",
        clone_url="https://example.com/octo/app.git",
        branch="feature",
        commit=COMMIT,
        change_title="Fix it",
        change_message="Fix it\n\nLonger.",
        change_author="Ann",
        default_branch="main",
    )
    assert source_environment(source) == {
        "CIRRUS_REPO_FULL_NAME": "octo/app",
        "CIRRUS_REPO_OWNER": "octo",
        "CIRRUS_REPO_NAME": "app",
        "CIRRUS_REPO_CLONE_URL": "https://example.com/octo/app.git",
        "CIRRUS_DEFAULT_BRANCH": "main",
        "CIRRUS_BRANCH": "feature",
        "CIRRUS_CHANGE_IN_REPO": COMMIT,
        "CIRRUS_CHANGE_TITLE": "Fix it",
        "CIRRUS_CHANGE_MESSAGE": "Fix it\n\nLonger.",
        "CIRRUS_COMMIT_MESSAGE": "Fix it\n\nLonger.",
    }


def test_a_pull_request_build_names_its_branch_pull_n_and_keeps_the_head_branch() -> None:
    environment = source_environment(BuildSource(branch="topic", pr=42, base_branch="main"))
    assert environment == {
        "CIRRUS_BRANCH": "pull/42",
        "CIRRUS_HEAD_BRANCH": "topic",
        "CIRRUS_PR": "42",
        "CIRRUS_BASE_BRANCH": "main",
    }


def test_a_tag_and_a_snapshot_have_their_own_variables() -> None:
    environment = source_environment(BuildSource(tag="v1.0", snapshot="s1", snapshot_sha256="ab"))
    assert environment == {
        "CIRRUS_TAG": "v1.0",
        "CIRRUS_SNAPSHOT": "s1",
        "CIRRUS_SNAPSHOT_SHA256": "ab",
    }


def test_a_repository_without_owner_sets_no_owner_or_name() -> None:
    assert source_environment(BuildSource(repository="lonely")) == {
        "CIRRUS_REPO_FULL_NAME": "lonely"
    }


def test_an_empty_source_has_no_variables() -> None:
    assert source_environment(BuildSource()) == {}


def test_json_names_are_camel_case_and_only_non_empty_ones_are_written() -> None:
    source = BuildSource(
        repository="o/n", clone_url="u", pr=7, base_branch="main", changed_files=("a.py",)
    )
    assert source_to_json(source) == {
        "repository": "o/n",
        "cloneUrl": "u",
        "baseBranch": "main",
        "pr": 7,
        "changedFiles": ["a.py"],
    }
    assert source_to_json(BuildSource()) == {}


def test_an_empty_list_of_changed_files_differs_from_unknown_ones() -> None:
    assert source_to_json(BuildSource(changed_files=())) == {"changedFiles": []}
    assert source_from_json({"changedFiles": []}).changed_files == ()
    assert source_from_json({}).changed_files is None


@given(
    st.builds(
        BuildSource,
        repository=st.text(max_size=8),
        branch=st.text(max_size=8),
        pr=st.none() | st.integers(min_value=1, max_value=10**9),
        commit=st.sampled_from(["", COMMIT, "abc1234"]),
        changed_files=st.none() | st.lists(st.text(max_size=5)).map(tuple),
        snapshot=st.from_regex(r"[A-Za-z0-9_-]{0,64}", fullmatch=True),
        change_message=st.text(max_size=8),
    )
)
def test_json_round_trips_every_source(source: BuildSource) -> None:
    assert source_from_json(source_to_json(source)) == source


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"pr": 0}, "source.pr: expected a positive integer, got 0"),
        ({"pr": "12"}, "source.pr: expected a positive integer, got '12'"),
        ({"pr": True}, "source.pr: expected a positive integer, got True"),
        ({"snapshot": "../etc"}, "source.snapshot: '../etc' is not a snapshot id"),
        ({"snapshot": "a" * 65}, "is not a snapshot id"),
        ({"commit": "abc"}, "source.commit: 'abc' is not a commit SHA"),
        ({"commit": "zzzzzzzz"}, "is not a commit SHA"),
        ({"changedFiles": "a.py"}, "source.changedFiles: expected a list of strings"),
        ({"changedFiles": [1]}, "source.changedFiles: expected a list of strings"),
        ({"branch": 3}, "source.branch: expected a string, got int"),
        ({"branch": "x", "sha": COMMIT}, "source.sha: unknown field"),
    ],
)
def test_a_malformed_source_is_refused_naming_the_field(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(SourceError) as caught:
        source_from_json(data)
    assert message in str(caught.value)
