"""The ``clone`` instruction's decisions: which source, which git commands, which errors retry.

The worker fetches a task's source on its own host (the instance may have no git), then copies
the files into the instance. This module only decides; ``adapters.source_fetch`` runs git and
HTTP. The git steps follow the Cirrus agent's built-in clone:

* a pull request (``CIRRUS_PR``): ``git init``, fetch ``refs/pull/<n>/head`` (``/merge`` with
  ``CIRRUS_RESOLUTION_STRATEGY=MERGE_FOR_PRS``, one commit deeper) and check it out;
* otherwise a single-branch clone of ``CIRRUS_TAG``, else of ``CIRRUS_BRANCH`` (the remote's
  default branch when empty); tags only with ``CIRRUS_CLONE_TAGS=true``;
* ``CIRRUS_CLONE_DEPTH`` > 0 limits the depth; a hard reset to ``CIRRUS_CHANGE_IN_REPO`` when
  HEAD is elsewhere (not for merge refs), fetching that commit first when the clone lacks it
  (the branch moved on); submodules with ``CIRRUS_CLONE_SUBMODULES=true``; LFS objects with
  ``CIRRUS_CLONE_LFS=true``.

``CIRRUS_REPO_CLONE_TOKEN`` is the password of user ``x-access-token``, handed to git by a
credential helper configured through the environment: never in a URL or ``.git/config``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import CirrusError

URL_VARIABLE = "CIRRUS_REPO_CLONE_URL"
TOKEN_VARIABLE = "CIRRUS_REPO_CLONE_TOKEN"
SNAPSHOT_VARIABLE = "CIRRUS_SNAPSHOT"
SNAPSHOT_SHA256_VARIABLE = "CIRRUS_SNAPSHOT_SHA256"
NO_SOURCE_MESSAGE = "no source to clone: the task has no CIRRUS_REPO_CLONE_URL"
TOKEN_USER = "x-access-token"
# Reads the token from the environment git runs with, answering only ``get`` requests.
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; echo username=' + TOKEN_USER + "; "
    'echo "password=$' + TOKEN_VARIABLE + '"; }; f'
)
_SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HTTP_URL = re.compile(r"^(https?://)(?:[^/@]*@)?([^/?#]+)", re.IGNORECASE)
_HTTP_5XX = re.compile(r"\b(?:HTTP|error:?|status)\s*5\d\d\b", re.IGNORECASE)
# git's wording of a refusal: retrying cannot help.
_DEFINITE = (
    "authentication failed",
    "access denied",
    "permission denied",
    "not exported",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "repository not found",
    "not found",
    "does not appear to be a git repository",
    "couldn't find remote ref",
    "not our ref",
    "unadvertised object",
    "unknown revision",
    "did not match any",
    "invalid refspec",
    "returned error: 4",
    "http 4",
)
# git's and curl's wording of network trouble.
_TRANSIENT = (
    "connection refused",
    "connection reset",
    "connection timed out",
    "timed out",
    "timeout",
    "could not resolve",
    "unable to connect",
    "failed to connect",
    "the remote end hung up unexpectedly",
    "early eof",
    "unexpected disconnect",
    "rpc failed",
    "recv failure",
    "send failure",
    "network is unreachable",
    "temporary failure in name resolution",
)


class CloneError(CirrusError):
    """The task's source cannot be fetched (bad variable, git or download failure)."""


@dataclass(frozen=True, slots=True)
class GitSource:
    """What to clone, read from the task environment."""

    url: str
    commit: str = ""
    branch: str = ""
    tag: str | None = None
    pr: str | None = None
    merge_ref: bool = False
    depth: int = 0
    tags: bool = False
    submodules: bool = False
    lfs: bool = False
    has_token: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotSource:
    """A snapshot archive of the controller, with its expected SHA-256 (hex)."""

    snapshot_id: str
    sha256: str


@dataclass(frozen=True, slots=True)
class GitStep:
    """One git command: its arguments (after ``git``), whether it talks to the remote, and a
    line announcing it (empty: none)."""

    args: tuple[str, ...]
    network: bool = False
    announce: str = ""


def source_kind(env: Mapping[str, str]) -> str:
    """``snapshot``, ``git`` or ``none``: what the clone command fetches."""
    if env.get(SNAPSHOT_VARIABLE):
        return "snapshot"
    if clone_url(env):
        return "git"
    return "none"


def has_source(env: Mapping[str, str]) -> bool:
    """Whether the task has anything to clone (a snapshot or a repository URL)."""
    return source_kind(env) != "none"


def clone_url(env: Mapping[str, str]) -> str:
    """The URL to clone: ``CIRRUS_REPO_CLONE_URL``, else (with a token) one made of
    ``CIRRUS_REPO_CLONE_HOST`` and ``CIRRUS_REPO_FULL_NAME`` as the agent did, never with the token.
    """
    url = env.get(URL_VARIABLE, "")
    if url:
        return url
    host, name = env.get("CIRRUS_REPO_CLONE_HOST", ""), env.get("CIRRUS_REPO_FULL_NAME", "")
    if env.get(TOKEN_VARIABLE) and host and name:
        return f"https://{host}/{name}.git"
    return ""


def _depth(env: Mapping[str, str]) -> int:
    text = env.get("CIRRUS_CLONE_DEPTH", "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise CloneError(f"CIRRUS_CLONE_DEPTH must be a whole number, got {text!r}")
    return int(text)


def git_source(env: Mapping[str, str]) -> GitSource:
    """The git source of the task environment; ``CloneError`` names a malformed variable."""
    url = clone_url(env)
    if not url:
        raise CloneError(NO_SOURCE_MESSAGE)
    if url.startswith("-"):
        raise CloneError(f"{URL_VARIABLE} must not start with '-'")
    commit = env.get("CIRRUS_CHANGE_IN_REPO", "").strip()
    if commit and not re.fullmatch(r"[0-9a-fA-F]{4,64}", commit):
        raise CloneError(f"CIRRUS_CHANGE_IN_REPO must be a commit SHA, got {commit!r}")
    pr = env.get("CIRRUS_PR")
    if pr is not None and not pr.isdigit():
        raise CloneError(f"CIRRUS_PR must be a pull request number, got {pr!r}")
    for name in ("CIRRUS_BRANCH", "CIRRUS_TAG"):
        if env.get(name, "").startswith("-"):
            raise CloneError(f"{name} must not start with '-'")
    return GitSource(
        url=url,
        commit=commit.lower(),
        branch=env.get("CIRRUS_BRANCH", ""),
        tag=env.get("CIRRUS_TAG"),
        pr=pr,
        merge_ref=pr is not None and env.get("CIRRUS_RESOLUTION_STRATEGY") == "MERGE_FOR_PRS",
        depth=_depth(env),
        tags=env.get("CIRRUS_CLONE_TAGS") == "true",
        submodules=env.get("CIRRUS_CLONE_SUBMODULES") == "true",
        lfs=env.get("CIRRUS_CLONE_LFS") == "true",
        has_token=bool(env.get(TOKEN_VARIABLE)),
    )


def snapshot_source(env: Mapping[str, str]) -> SnapshotSource:
    """The snapshot of the task environment; ``CloneError`` for a malformed id or hash."""
    snapshot_id = env.get(SNAPSHOT_VARIABLE, "")
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise CloneError(f"{SNAPSHOT_VARIABLE} is not a snapshot id: {snapshot_id!r}")
    sha256 = env.get(SNAPSHOT_SHA256_VARIABLE, "").strip().lower()
    if not _SHA256.match(sha256):
        raise CloneError(f"{SNAPSHOT_SHA256_VARIABLE} must be a SHA-256 in hex, got {sha256!r}")
    return SnapshotSource(snapshot_id, sha256)


def snapshot_url(endpoint: str, source: SnapshotSource) -> str:
    """Where the controller at ``endpoint`` serves the snapshot."""
    return f"{endpoint.rstrip('/')}/api/v1/snapshots/{source.snapshot_id}"


def _pr_ref(source: GitSource) -> str:
    kind = "merge" if source.merge_ref else "head"
    return f"+refs/pull/{source.pr}/{kind}:refs/remotes/origin/pull/{source.pr}"


def fetch_depth(source: GitSource) -> int:
    """The depth of fetches: the merge ref brings one extra (merge) commit."""
    if source.depth > 0 and source.merge_ref:
        return source.depth + 1
    return source.depth


def _depth_args(source: GitSource) -> tuple[str, ...]:
    depth = fetch_depth(source)
    return ("--depth", str(depth)) if depth > 0 else ()


def clone_steps(source: GitSource, directory: str) -> list[GitStep]:
    """The commands that get the branch, tag or PR ref into ``directory`` (a new one)."""
    tags = "--tags" if source.tags else "--no-tags"
    if source.pr is not None:
        ref = _pr_ref(source)
        steps = [
            GitStep(("init", "--quiet", directory)),
            GitStep(("-C", directory, "remote", "add", "origin", source.url)),
            GitStep(
                ("-C", directory, "fetch", tags, *_depth_args(source), "origin", ref),
                network=True,
                announce=f"Fetching {ref}...",
            ),
        ]
        target = f"refs/remotes/origin/pull/{source.pr}"
        if not source.merge_ref and source.commit:
            target = source.commit
        return [*steps, GitStep(("-C", directory, "checkout", "--quiet", target))]
    args: tuple[str, ...] = ("clone", "--single-branch")
    if source.tag is not None:
        args += ("--branch", source.tag)
        announce = f"Cloning refs/tags/{source.tag}..."
    elif source.branch:
        args += (tags, "--branch", source.branch)
        announce = f"Cloning refs/heads/{source.branch}..."
    else:
        args += (tags,)
        announce = "Cloning the default branch..."
    args += (*_depth_args(source), "--", source.url, directory)
    return [GitStep(args, network=True, announce=announce)]


def needs_reset(source: GitSource, head: str) -> bool:
    """Whether HEAD must be hard reset to the task's commit (never for a PR merge ref)."""
    return bool(source.commit) and not source.merge_ref and not head.startswith(source.commit)


def fetch_commit_step(source: GitSource, directory: str) -> GitStep:
    """Fetch exactly the task's commit (missing after the clone when the branch moved on)."""
    args = ("-C", directory, "fetch", "--no-tags", *_depth_args(source), "origin", source.commit)
    return GitStep(args, network=True, announce=f"Fetching {source.commit}...")


def reset_step(source: GitSource, directory: str) -> GitStep:
    """Hard reset the work tree to the task's commit."""
    return GitStep(("-C", directory, "reset", "--quiet", "--hard", source.commit))


def finishing_steps(source: GitSource, directory: str) -> list[GitStep]:
    """Submodules and LFS objects, as the task asked."""
    steps = []
    if source.submodules:
        steps.append(
            GitStep(
                ("-C", directory, "submodule", "update", "--init", "--recursive"),
                network=True,
                announce="Updating submodules...",
            )
        )
    if source.lfs:
        steps.append(
            GitStep(
                ("-C", directory, "lfs", "pull"), network=True, announce="Fetching LFS objects..."
            )
        )
    return steps


def credential_scope(url: str) -> str | None:
    """The ``scheme://host[:port]`` the token is for (HTTP(S) URLs only; else None)."""
    match = _HTTP_URL.match(url)
    if match is None:
        return None
    return f"{match.group(1).lower()}{match.group(2)}"


def git_environment(source: GitSource) -> dict[str, str]:
    """Variables for every git command: no prompts, and the credential helper for the token.

    An empty ``credential.helper`` first clears helpers from the user's configuration, so only
    the token answers; it is scoped to the clone URL's host, so submodules elsewhere never
    receive it.
    """
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "GCM_INTERACTIVE": "never",
        # As on Cirrus CI, LFS files stay pointers unless CIRRUS_CLONE_LFS asks for them: a
        # host whose git-lfs installed its filters globally would otherwise fetch them anyway.
        "GIT_LFS_SKIP_SMUDGE": "1",
    }
    scope = credential_scope(source.url)
    if source.has_token and scope is not None:
        key = f"credential.{scope}.helper"
        env.update(
            {
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": key,
                "GIT_CONFIG_VALUE_0": "",
                "GIT_CONFIG_KEY_1": key,
                "GIT_CONFIG_VALUE_1": CREDENTIAL_HELPER,
            }
        )
    return env


def is_transient(message: str) -> bool:
    """Whether git's (or curl's) error text names network trouble worth a retry.

    Refusals (authentication, a missing repository, ref or commit) never are.
    """
    text = message.lower()
    if any(pattern in text for pattern in _DEFINITE):
        return False
    return any(pattern in text for pattern in _TRANSIENT) or bool(_HTTP_5XX.search(message))


def failure_line(output: str) -> str:
    """The line of git's output that says why it failed (the last ``fatal:``/``error:`` one)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else "no output"
