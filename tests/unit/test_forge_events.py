"""Forge deliveries: signatures checked as GitHub and Gitea sign, and events reduced to what a
build needs."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from domain.forge_events import (
    ZERO_COMMIT,
    EventKind,
    ForgeEventError,
    parse_event,
    signature_valid,
)

BODY = b'{"zen": "hi"}'
REPO = {"full_name": "acme/app", "default_branch": "main"}


def digest(secret: str, body: bytes = BODY) -> str:
    """The hex HMAC-SHA256 a forge sends."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_github_signature_with_its_prefix_is_valid() -> None:
    assert signature_valid("s", BODY, "sha256=" + digest("s"))


def test_a_gitea_signature_without_prefix_is_valid() -> None:
    assert signature_valid("s", BODY, digest("s"))


@pytest.mark.parametrize("header", ["", "sha256=", "sha256=" + "0" * 64, "é"])
def test_a_wrong_or_missing_signature_is_invalid(header: str) -> None:
    assert not signature_valid("s", BODY, header)


def test_a_signature_under_another_secret_is_invalid() -> None:
    assert not signature_valid("s", BODY, digest("t"))


def test_an_empty_secret_never_validates() -> None:
    assert not signature_valid("", BODY, digest(""))


def test_a_push_to_a_branch_names_its_commit_branch_and_changed_files() -> None:
    event = parse_event(
        "push",
        {
            "ref": "refs/heads/feature",
            "before": "a" * 40,
            "after": "b" * 40,
            "repository": REPO,
            "head_commit": {"message": "Title\n\nBody", "author": {"name": "Ann"}},
            "commits": [
                {"added": ["x"], "removed": [], "modified": ["y"]},
                {"added": [], "removed": ["z"], "modified": ["x"]},
            ],
            "sender": {"login": "ann"},
        },
    )
    assert event.kind is EventKind.PUSH
    assert (event.branch, event.commit, event.title) == ("feature", "b" * 40, "Title")
    assert event.changed_files == ("x", "y", "z")
    assert event.sender == "ann"


def test_a_new_branch_leaves_its_changed_files_unknown() -> None:
    payload = {"ref": "refs/heads/new", "before": ZERO_COMMIT, "after": "b" * 40}
    event = parse_event("push", {**payload, "repository": REPO, "commits": []})
    assert event.changed_files is None


def test_a_push_of_a_tag_names_the_tag() -> None:
    event = parse_event("push", {"ref": "refs/tags/v1", "after": "c" * 40, "repository": REPO})
    assert (event.kind, event.tag, event.branch) == (EventKind.PUSH, "v1", "")


def test_a_push_deleting_a_branch_and_a_delete_event_both_delete_it() -> None:
    pushed = {"ref": "refs/heads/gone", "after": ZERO_COMMIT, "deleted": True, "repository": REPO}
    deleted = {"ref": "gone", "ref_type": "branch", "repository": REPO}
    for event in (parse_event("push", pushed), parse_event("delete", deleted)):
        assert (event.kind, event.branch) == (EventKind.BRANCH_DELETED, "gone")


def pull_request(action: str, head_repo: str) -> dict[str, object]:
    """A pull request delivery."""
    return {
        "action": action,
        "number": 5,
        "pull_request": {
            "title": "T",
            "draft": True,
            "labels": [{"name": "a"}, {"name": "b"}],
            "head": {"ref": "topic", "sha": "d" * 40, "repo": {"full_name": head_repo}},
            "base": {"ref": "main"},
        },
        "repository": REPO,
    }


@pytest.mark.parametrize("action", ["opened", "synchronize", "synchronized", "label_updated"])
def test_a_handled_pull_request_action_builds_its_head(action: str) -> None:
    event = parse_event("pull_request", pull_request(action, "acme/app"))
    assert event.kind is EventKind.PULL_REQUEST
    assert (event.pr, event.branch, event.base_branch) == (5, "topic", "main")
    assert (event.draft, event.labels, event.from_fork) == (True, ("a", "b"), False)


def test_a_pull_request_from_another_repository_is_from_a_fork() -> None:
    assert parse_event("pull_request", pull_request("opened", "eve/app")).from_fork


def test_a_closed_pull_request_and_unknown_events_are_ignored() -> None:
    assert parse_event("pull_request", pull_request("closed", "acme/app")).kind is EventKind.IGNORED
    assert parse_event("issues", {"repository": REPO}).kind is EventKind.IGNORED


def test_a_delivery_without_its_repository_is_refused_naming_the_field() -> None:
    with pytest.raises(ForgeEventError, match="repository"):
        parse_event("push", {"ref": "refs/heads/x"})
