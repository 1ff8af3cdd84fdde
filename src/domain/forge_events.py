"""Forge webhook deliveries: their signatures, and what each event asks the controller to do.

GitHub and Gitea/Forgejo send the same shapes for the events handled here (Gitea copied
GitHub's): ``push`` (to a branch or a tag; ``deleted`` for a branch deletion), ``delete``
(a branch or tag removed) and ``pull_request`` (``opened``, ``synchronize`` - Gitea says
``synchronized`` -, ``reopened``, ``labeled`` - Gitea ``label_updated``). Anything else is
``IGNORED``: forges expect a 2xx for events nobody subscribed to on purpose.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from domain.errors import CirrusError

ZERO_COMMIT = "0" * 40
"""The ``before``/``after`` of a push that created or deleted a ref."""

PR_ACTIONS = {
    "opened": "opened",
    "synchronize": "synchronize",
    "synchronized": "synchronize",
    "reopened": "reopened",
    "labeled": "labeled",
    "label_updated": "labeled",
}

PAYLOAD_COMMITS_CAP = 20
"""GitHub lists at most 20 commits in a push; with that many, the compare API tells the files."""


class ForgeEventError(CirrusError):
    """A delivery's payload lacks what its event needs; ``str()`` names the field."""


class EventKind(Enum):
    """What a delivery asks for."""

    PUSH = "push"
    PULL_REQUEST = "pull_request"
    BRANCH_DELETED = "branch_deleted"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class ForgeEvent:
    """A delivery, reduced to what a build (or a cancellation) needs."""

    kind: EventKind
    repository: str = ""  # OWNER/NAME the hook belongs to (the PR's base repository)
    commit: str = ""
    branch: str = ""  # for a PR: its head branch
    tag: str = ""
    pr: int | None = None
    base_branch: str = ""
    head_repository: str = ""  # a PR's head repository (a fork's, or the same one)
    default_branch: str = ""
    title: str = ""
    message: str = ""
    author: str = ""
    sender: str = ""
    before: str = ""  # a push's previous commit (ZERO_COMMIT for a new ref)
    changed_files: tuple[str, ...] | None = None
    draft: bool = False
    labels: tuple[str, ...] = ()
    ignored: str = ""  # why an IGNORED delivery is

    @property
    def from_fork(self) -> bool:
        """Whether the event is a pull request whose head lives in another repository."""
        return (
            self.kind is EventKind.PULL_REQUEST
            and bool(self.head_repository)
            and self.head_repository.casefold() != self.repository.casefold()
        )


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """Return whether ``header`` is the HMAC-SHA256 of ``body`` under ``secret``, compared in
    constant time (GitHub's ``sha256=<hex>``, or Gitea's bare hex)."""
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    given = header.strip().removeprefix("sha256=").lower()
    return bool(secret) and hmac.compare_digest(expected.encode(), given.encode("ascii", "replace"))


def parse_event(event: str, payload: Mapping[str, Any]) -> ForgeEvent:
    """Return what a delivery of ``event`` (``X-GitHub-Event``/``X-Gitea-Event``) asks for."""
    repository = _text(_map(payload, "repository"), "full_name", "repository")
    if event == "push":
        return _push(payload, repository)
    if event == "delete":
        if payload.get("ref_type") == "branch":
            return ForgeEvent(EventKind.BRANCH_DELETED, repository, branch=_text(payload, "ref"))
        return ForgeEvent(EventKind.IGNORED, repository, ignored="a tag was deleted")
    if event == "pull_request":
        return _pull_request(payload, repository)
    return ForgeEvent(EventKind.IGNORED, repository, ignored=f"event {event!r} is not handled")


def _push(payload: Mapping[str, Any], repository: str) -> ForgeEvent:
    ref = _text(payload, "ref")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else ""
    after = str(payload.get("after") or "")
    if payload.get("deleted") or after == ZERO_COMMIT:
        if branch:
            return ForgeEvent(EventKind.BRANCH_DELETED, repository, branch=branch)
        return ForgeEvent(EventKind.IGNORED, repository, ignored=f"{ref} was deleted")
    if not (branch or tag):
        return ForgeEvent(EventKind.IGNORED, repository, ignored=f"{ref!r} is not a branch or tag")
    if not after:
        raise ForgeEventError("after: a push names no commit")
    head = payload.get("head_commit")
    head = head if isinstance(head, Mapping) else {}
    message = str(head.get("message") or "")
    author = head.get("author")
    commits = payload.get("commits")
    return ForgeEvent(
        EventKind.PUSH,
        repository,
        commit=after,
        branch=branch,
        tag=tag,
        default_branch=str(_map(payload, "repository").get("default_branch") or ""),
        title=message.split("\n", 1)[0],
        message=message,
        author=str(author.get("name") or "") if isinstance(author, Mapping) else "",
        sender=_login(payload),
        before=str(payload.get("before") or ""),
        changed_files=_push_files(commits, str(payload.get("before") or "")),
    )


def _push_files(commits: object, before: str) -> tuple[str, ...] | None:
    """The files a push changed, when its payload tells them all (else None)."""
    if not isinstance(commits, list) or not commits or before in ("", ZERO_COMMIT):
        return None
    if len(commits) >= PAYLOAD_COMMITS_CAP:
        return None
    files: dict[str, None] = {}
    for commit in commits:
        if not isinstance(commit, Mapping):
            return None
        for key in ("added", "removed", "modified"):
            names = commit.get(key)
            if not isinstance(names, list):
                return None  # Gitea leaves them out of some deliveries
            files.update((str(name), None) for name in names)
    return tuple(sorted(files))


def _pull_request(payload: Mapping[str, Any], repository: str) -> ForgeEvent:
    action = PR_ACTIONS.get(str(payload.get("action") or ""))
    if action is None:
        return ForgeEvent(
            EventKind.IGNORED, repository, ignored=f"pull request {payload.get('action')!r}"
        )
    pull = _map(payload, "pull_request")
    head, base = _map(pull, "head"), _map(pull, "base")
    number = payload.get("number", pull.get("number"))
    if not isinstance(number, int) or isinstance(number, bool):
        raise ForgeEventError("number: a pull request delivery names no number")
    head_repo = head.get("repo")
    labels = pull.get("labels")
    user = pull.get("user")
    return ForgeEvent(
        EventKind.PULL_REQUEST,
        repository,
        commit=_text(head, "sha", "pull_request.head"),
        branch=_text(head, "ref", "pull_request.head"),
        pr=number,
        base_branch=_text(base, "ref", "pull_request.base"),
        head_repository=str(head_repo.get("full_name") or "")
        if isinstance(head_repo, Mapping)
        else "",
        default_branch=str(_map(payload, "repository").get("default_branch") or ""),
        title=str(pull.get("title") or ""),
        message=str(pull.get("body") or ""),
        author=str(user.get("login") or "") if isinstance(user, Mapping) else "",
        sender=_login(payload),
        draft=bool(pull.get("draft")),
        labels=tuple(
            str(label.get("name"))
            for label in (labels if isinstance(labels, list) else [])
            if isinstance(label, Mapping) and label.get("name")
        ),
    )


def _login(payload: Mapping[str, Any]) -> str:
    sender = payload.get("sender")
    if not isinstance(sender, Mapping):
        return ""
    return str(sender.get("login") or sender.get("username") or "")


def _map(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    if not isinstance(value, Mapping):
        raise ForgeEventError(f"{key}: missing from the delivery")
    return value


def _text(payload: Mapping[str, Any], key: str, where: str = "") -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ForgeEventError(f"{where + '.' if where else ''}{key}: missing from the delivery")
    return value
