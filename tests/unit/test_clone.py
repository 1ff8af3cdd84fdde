"""The clone instruction's pure decisions: the source, the git steps, the token and retries."""

from __future__ import annotations

import pytest

from domain.clone import (
    CREDENTIAL_HELPER,
    CloneError,
    clone_steps,
    clone_url,
    credential_scope,
    failure_line,
    fetch_commit_step,
    fetch_depth,
    finishing_steps,
    git_environment,
    git_source,
    has_source,
    is_transient,
    needs_reset,
    snapshot_source,
    snapshot_url,
    source_kind,
)

URL = "https://git.example.invalid/o/r.git"
SHA = "a" * 40


def test_a_snapshot_wins_over_a_clone_url_and_nothing_means_no_source() -> None:
    assert source_kind({"CIRRUS_SNAPSHOT": "s1", "CIRRUS_REPO_CLONE_URL": URL}) == "snapshot"
    assert source_kind({"CIRRUS_REPO_CLONE_URL": URL}) == "git"
    assert source_kind({"CIRRUS_REPO_CLONE_URL": ""}) == "none"
    assert not has_source({})


def test_a_token_with_host_and_name_makes_a_clone_url_without_the_token() -> None:
    env = {
        "CIRRUS_REPO_CLONE_TOKEN": "sekrit",
        "CIRRUS_REPO_CLONE_HOST": "github.com",
        "CIRRUS_REPO_FULL_NAME": "o/r",
    }
    assert clone_url(env) == "https://github.com/o/r.git"
    assert not has_source({"CIRRUS_REPO_CLONE_TOKEN": "sekrit"})


def test_a_branch_clone_is_single_branch_without_tags_unless_asked() -> None:
    source = git_source({"CIRRUS_REPO_CLONE_URL": URL, "CIRRUS_BRANCH": "main"})
    (step,) = clone_steps(source, "/ws/src")
    assert step.args == (
        "clone", "--single-branch", "--no-tags", "--branch", "main", "--", URL, "/ws/src"
    )  # fmt: skip
    assert step.network
    assert step.announce == "Cloning refs/heads/main..."
    tagged = git_source({"CIRRUS_REPO_CLONE_URL": URL, "CIRRUS_CLONE_TAGS": "true"})
    assert "--tags" in clone_steps(tagged, "d")[0].args


def test_a_tag_clone_names_the_tag_and_a_depth_limits_it() -> None:
    env = {"CIRRUS_REPO_CLONE_URL": URL, "CIRRUS_TAG": "v1", "CIRRUS_CLONE_DEPTH": "3"}
    (step,) = clone_steps(git_source(env), "d")
    assert step.args == (
        "clone",
        "--single-branch",
        "--branch",
        "v1",
        "--depth",
        "3",
        "--",
        URL,
        "d",
    )


def test_a_pull_request_fetches_its_head_ref_and_checks_out_the_commit() -> None:
    env = {"CIRRUS_REPO_CLONE_URL": URL, "CIRRUS_PR": "7", "CIRRUS_CHANGE_IN_REPO": SHA}
    steps = clone_steps(git_source(env), "d")
    assert [s.args[0] for s in steps] == ["init", "-C", "-C", "-C"]
    assert steps[2].args[-1] == "+refs/pull/7/head:refs/remotes/origin/pull/7"
    assert steps[3].args[-1] == SHA


def test_the_merge_strategy_fetches_the_merge_ref_one_deeper_and_never_resets() -> None:
    env = {
        "CIRRUS_REPO_CLONE_URL": URL,
        "CIRRUS_PR": "7",
        "CIRRUS_CHANGE_IN_REPO": SHA,
        "CIRRUS_RESOLUTION_STRATEGY": "MERGE_FOR_PRS",
        "CIRRUS_CLONE_DEPTH": "1",
    }
    source = git_source(env)
    steps = clone_steps(source, "d")
    assert "+refs/pull/7/merge:refs/remotes/origin/pull/7" in steps[2].args
    assert fetch_depth(source) == 2
    assert steps[3].args[-1] == "refs/remotes/origin/pull/7"
    assert not needs_reset(source, "b" * 40)


def test_a_reset_is_needed_only_when_head_is_not_the_commit() -> None:
    source = git_source({"CIRRUS_REPO_CLONE_URL": URL, "CIRRUS_CHANGE_IN_REPO": SHA.upper()})
    assert not needs_reset(source, SHA)
    assert needs_reset(source, "b" * 40)
    assert fetch_commit_step(source, "d").args == ("-C", "d", "fetch", "--no-tags", "origin", SHA)
    assert not needs_reset(git_source({"CIRRUS_REPO_CLONE_URL": URL}), "b" * 40)


def test_submodules_and_lfs_run_only_when_asked() -> None:
    assert finishing_steps(git_source({"CIRRUS_REPO_CLONE_URL": URL}), "d") == []
    env = {
        "CIRRUS_REPO_CLONE_URL": URL,
        "CIRRUS_CLONE_SUBMODULES": "true",
        "CIRRUS_CLONE_LFS": "true",
    }
    steps = finishing_steps(git_source(env), "d")
    assert [s.args[2:4] for s in steps] == [("submodule", "update"), ("lfs", "pull")]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CIRRUS_CLONE_DEPTH": "two"}, "CIRRUS_CLONE_DEPTH"),
        ({"CIRRUS_PR": "abc"}, "CIRRUS_PR"),
        ({"CIRRUS_CHANGE_IN_REPO": "main"}, "CIRRUS_CHANGE_IN_REPO"),
        ({"CIRRUS_BRANCH": "--upload-pack=x"}, "CIRRUS_BRANCH"),
    ],
)
def test_a_malformed_variable_is_named_in_the_error(env: dict[str, str], named: str) -> None:
    with pytest.raises(CloneError, match=named):
        git_source({"CIRRUS_REPO_CLONE_URL": URL, **env})


def test_the_token_goes_to_a_credential_helper_scoped_to_the_clone_host() -> None:
    env = {"CIRRUS_REPO_CLONE_URL": "http://127.0.0.1:8080/r.git", "CIRRUS_REPO_CLONE_TOKEN": "t"}
    git_env = git_environment(git_source(env))
    assert git_env["GIT_TERMINAL_PROMPT"] == "0"
    assert git_env["GIT_CONFIG_KEY_1"] == "credential.http://127.0.0.1:8080.helper"
    assert git_env["GIT_CONFIG_VALUE_0"] == ""
    assert git_env["GIT_CONFIG_VALUE_1"] == CREDENTIAL_HELPER
    assert "t" not in git_env.values()
    assert "$CIRRUS_REPO_CLONE_TOKEN" in CREDENTIAL_HELPER
    assert "GIT_CONFIG_COUNT" not in git_environment(git_source({"CIRRUS_REPO_CLONE_URL": URL}))
    assert credential_scope("git://host/r.git") is None
    assert credential_scope("HTTPS://user@Host:1/r") == "https://Host:1"


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        (
            "fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: Connection refused",
            True,
        ),
        ("fatal: unable to access 'https://x/': Could not resolve host: x", True),
        ("error: RPC failed; HTTP 503 curl 22 The requested URL returned error: 503", True),
        ("fatal: the remote end hung up unexpectedly", True),
        ("fatal: Authentication failed for 'http://127.0.0.1/r.git/'", False),
        ("fatal: could not read Username for 'http://h': terminal prompts disabled", False),
        ("fatal: remote error: access denied or repository not exported: /nope.git", False),
        ("fatal: couldn't find remote ref refs/heads/nope", False),
        ("fatal: remote error: upload-pack: not our ref " + SHA, False),
        ("fatal: The requested URL returned error: 404", False),
    ],
)
def test_only_network_trouble_is_transient(message: str, transient: bool) -> None:
    assert is_transient(message) is transient


def test_the_failure_line_is_gits_last_fatal_line() -> None:
    output = "Cloning into 'd'...\nfatal: first\nremote: noise\nfatal: last reason\nmore\n"
    assert failure_line(output) == "fatal: last reason"
    assert failure_line("") == "no output"


def test_a_snapshot_needs_a_valid_id_and_sha256_and_has_a_controller_url() -> None:
    env = {"CIRRUS_SNAPSHOT": "abc_1", "CIRRUS_SNAPSHOT_SHA256": "F" * 64}
    source = snapshot_source(env)
    assert source.sha256 == "f" * 64
    assert snapshot_url("http://c:1/", source) == "http://c:1/api/v1/snapshots/abc_1"
    with pytest.raises(CloneError, match="CIRRUS_SNAPSHOT"):
        snapshot_source({**env, "CIRRUS_SNAPSHOT": "../x"})
    with pytest.raises(CloneError, match="CIRRUS_SNAPSHOT_SHA256"):
        snapshot_source({**env, "CIRRUS_SNAPSHOT_SHA256": "nope"})
