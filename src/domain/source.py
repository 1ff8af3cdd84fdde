"""Where a build's code comes from: a git source for the worker to clone, or an uploaded snapshot.

A build has at most one source. ``source_environment`` derives the ``CIRRUS_*`` variables a task
sees from it, as Cirrus CI set them for the commit it built; the JSON codec is the API's
``"source"`` object (camelCase keys, only the non-empty ones written).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import CirrusError

SNAPSHOT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a snapshot id looks like (it is used in URLs and as a database key)."""

_COMMIT_PATTERN = re.compile(r"[0-9a-fA-F]{7,64}")

_STRING_FIELDS: Mapping[str, str] = {
    "repository": "repository",
    "cloneUrl": "clone_url",
    "branch": "branch",
    "tag": "tag",
    "baseBranch": "base_branch",
    "commit": "commit",
    "changeTitle": "change_title",
    "changeMessage": "change_message",
    "changeAuthor": "change_author",
    "defaultBranch": "default_branch",
    "snapshot": "snapshot",
    "snapshotSha256": "snapshot_sha256",
}
_KNOWN_FIELDS = frozenset(_STRING_FIELDS) | {"pr", "changedFiles"}


class SourceError(CirrusError):
    """A build source is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class BuildSource:
    """A build's source: the git coordinates of the change, and/or an uploaded snapshot.

    Empty strings and ``None`` mean unknown: ``changed_files`` is ``None`` when nobody computed
    them, and ``()`` when nothing changed.
    """

    repository: str = ""
    clone_url: str = ""
    branch: str = ""
    tag: str = ""
    pr: int | None = None
    base_branch: str = ""
    commit: str = ""
    change_title: str = ""
    change_message: str = ""
    change_author: str = ""
    default_branch: str = ""
    changed_files: tuple[str, ...] | None = None
    snapshot: str = ""
    snapshot_sha256: str = ""

    @property
    def kind(self) -> str:
        """Return ``"snapshot"``, ``"git"`` (a clone URL) or ``"none"`` (nothing to fetch)."""
        if self.snapshot:
            return "snapshot"
        if self.clone_url:
            return "git"
        return "none"


def source_environment(source: BuildSource) -> dict[str, str]:
    """Return the ``CIRRUS_*`` variables of a source (only the non-empty ones)."""
    owner, _, name = source.repository.partition("/")
    values: list[tuple[str, str]] = [
        ("CIRRUS_REPO_FULL_NAME", source.repository),
        ("CIRRUS_REPO_OWNER", owner if name else ""),
        ("CIRRUS_REPO_NAME", name),
        ("CIRRUS_REPO_CLONE_URL", source.clone_url),
        ("CIRRUS_DEFAULT_BRANCH", source.default_branch),
    ]
    if source.pr is not None:
        values += [
            ("CIRRUS_BRANCH", f"pull/{source.pr}"),
            ("CIRRUS_HEAD_BRANCH", source.branch),
            ("CIRRUS_PR", str(source.pr)),
            ("CIRRUS_BASE_BRANCH", source.base_branch),
        ]
    else:
        values.append(("CIRRUS_BRANCH", source.branch))
    values += [
        ("CIRRUS_TAG", source.tag),
        ("CIRRUS_CHANGE_IN_REPO", source.commit),
        ("CIRRUS_CHANGE_TITLE", source.change_title),
        ("CIRRUS_CHANGE_MESSAGE", source.change_message),
        # The variable's old name: configurations written for older Cirrus still read it.
        ("CIRRUS_COMMIT_MESSAGE", source.change_message),
        ("CIRRUS_SNAPSHOT", source.snapshot),
        ("CIRRUS_SNAPSHOT_SHA256", source.snapshot_sha256),
    ]
    return {key: value for key, value in values if value}


def _string(data: Mapping[str, object], key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SourceError(f"source.{key}: expected a string, got {type(value).__name__}")
    return value


def _pr(data: Mapping[str, object]) -> int | None:
    value = data.get("pr")
    if value is None:
        return None
    # bool is an int in Python, but ``true`` is no pull request number.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SourceError(f"source.pr: expected a positive integer, got {value!r}")
    return value


def _changed_files(data: Mapping[str, object]) -> tuple[str, ...] | None:
    value = data.get("changedFiles")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SourceError("source.changedFiles: expected a list of strings")
    return tuple(value)


def source_from_json(data: Mapping[str, object]) -> BuildSource:
    """Return the source an API ``"source"`` object describes; ``SourceError`` names a bad field."""
    unknown = sorted(key for key in data if key not in _KNOWN_FIELDS)
    if unknown:
        raise SourceError(f"source.{unknown[0]}: unknown field")
    strings = {attribute: _string(data, key) for key, attribute in _STRING_FIELDS.items()}
    snapshot = strings["snapshot"]
    if snapshot and SNAPSHOT_ID_PATTERN.fullmatch(snapshot) is None:
        raise SourceError(
            f"source.snapshot: {snapshot!r} is not a snapshot id (letters, digits, '_', '-'; "
            "at most 64)"
        )
    commit = strings["commit"]
    if commit and _COMMIT_PATTERN.fullmatch(commit) is None:
        raise SourceError(
            f"source.commit: {commit!r} is not a commit SHA (7 to 64 hexadecimal digits)"
        )
    return BuildSource(pr=_pr(data), changed_files=_changed_files(data), **strings)


def source_to_json(source: BuildSource) -> dict[str, object]:
    """Return the API ``"source"`` object of a source (only the non-empty fields)."""
    result: dict[str, object] = {}
    for key, attribute in _STRING_FIELDS.items():
        value = getattr(source, attribute)
        if value:
            result[key] = value
    if source.pr is not None:
        result["pr"] = source.pr
    if source.changed_files is not None:
        result["changedFiles"] = list(source.changed_files)
    return result
