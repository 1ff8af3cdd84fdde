"""A forge stand-in on 127.0.0.1: the GitHub-like (and, under ``/api/v1``, Gitea-like) API
calls the controller makes, answered from real bare git repositories, and the webhook
deliveries a forge sends, signed as GitHub and Gitea sign them.

Served calls: contents of a file at a ref, a branch's head, compare, a pull request's files,
a collaborator's permission, and commit statuses (recorded in arrival order; ``failing`` makes
them answer 500, as a forge in an outage does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.http_stub import StubHandler, serve_http

_ROUTES = [
    ("GET", re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/contents/(?P<path>.+)"), "contents"),
    ("GET", re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/branches/(?P<branch>.+)"), "branch"),
    (
        "GET",
        re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/compare/(?P<a>\w+)\.\.\.(?P<b>\w+)"),
        "compare",
    ),
    ("GET", re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<n>\d+)/files"), "pull_files"),
    (
        "GET",
        re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/collaborators/(?P<user>[^/]+)/permission"),
        "permission",
    ),
    ("POST", re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>\w+)"), "status"),
]


@dataclass
class ForgeState:
    """What the stand-in serves and what it saw."""

    repositories: dict[str, Path] = field(default_factory=dict)  # OWNER/NAME -> bare repo
    permissions: dict[str, str] = field(default_factory=dict)  # login -> permission
    pull_files: dict[int, list[str]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    failed_posts: int = 0
    failing: bool = False
    requests: list[str] = field(default_factory=list)  # "METHOD path", as they came
    lock: threading.Lock = field(default_factory=threading.Lock)

    def statuses_of(self, context: str) -> list[str]:
        """The states posted for ``context``, in order."""
        with self.lock:
            return [s["state"] for s in self.statuses if s["context"] == context]


def _git(bare: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(bare), *args], capture_output=True, check=False)


def _handler(state: ForgeState) -> type[StubHandler]:
    class Handler(StubHandler):
        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            with state.lock:
                state.requests.append(f"{method} {path}")
            path = path.removeprefix("/api/v1")
            for verb, pattern, name in _ROUTES:
                match = pattern.fullmatch(path)
                if verb == method and match:
                    status, answer = getattr(self, "_" + name)(match.groupdict(), query)
                    self.reply(status, "application/json", json.dumps(answer).encode())
                    return
            self.reply(404, "application/json", b'{"message": "Not Found"}')

        def _bare(self, repo: str) -> Path:
            return state.repositories[repo]

        def _contents(self, m: dict[str, str], query: str) -> tuple[int, Any]:
            ref = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("ref", "HEAD")
            shown = _git(self._bare(m["repo"]), "show", f"{ref}:{m['path']}")
            if shown.returncode != 0:
                return 404, {"message": "Not Found"}
            return 200, {"type": "file", "content": base64.b64encode(shown.stdout).decode()}

        def _branch(self, m: dict[str, str], _query: str) -> tuple[int, Any]:
            parsed = _git(self._bare(m["repo"]), "rev-parse", f"refs/heads/{m['branch']}")
            if parsed.returncode != 0:
                return 404, {"message": "Branch Not Found"}
            sha = parsed.stdout.decode().strip()
            return 200, {"name": m["branch"], "commit": {"sha": sha, "id": sha}}

        def _compare(self, m: dict[str, str], _query: str) -> tuple[int, Any]:
            diff = _git(self._bare(m["repo"]), "diff", "--name-only", m["a"], m["b"])
            names = diff.stdout.decode().split()
            return 200, {"files": [{"filename": name} for name in names]}

        def _pull_files(self, m: dict[str, str], _query: str) -> tuple[int, Any]:
            return 200, [{"filename": n} for n in state.pull_files.get(int(m["n"]), [])]

        def _permission(self, m: dict[str, str], _query: str) -> tuple[int, Any]:
            return 200, {"permission": state.permissions.get(m["user"], "read")}

        def _status(self, m: dict[str, str], _query: str) -> tuple[int, Any]:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            with state.lock:
                if state.failing:
                    state.failed_posts += 1
                    return 500, {"message": "Server Error"}
                state.statuses.append({**body, "sha": m["sha"], "repository": m["repo"]})
            return 201, body

    return Handler


@contextmanager
def forge_standin(state: ForgeState) -> Iterator[str]:
    """Serve the stand-in; yield its base URL (GitHub-like at ``/``, Gitea-like at ``/api/v1``)."""
    with serve_http(_handler(state)) as url:
        yield url


def signed_headers(
    forge: str, event: str, delivery: str, body: bytes, secret: str
) -> dict[str, str]:
    """The headers a forge sends with a delivery, signed with ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if forge == "github":
        return {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={digest}",
            "Content-Type": "application/json",
        }
    return {
        "X-Gitea-Event": event,
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Signature": digest,
        "Content-Type": "application/json",
    }


async def deliver(
    http: httpx.AsyncClient,
    forge: str,
    event: str,
    payload: dict[str, Any],
    secret: str,
    delivery: str,
) -> httpx.Response:
    """POST a signed delivery to the controller's ``/webhooks/<forge>``."""
    body = json.dumps(payload).encode()
    headers = signed_headers(forge, event, delivery, body, secret)
    return await http.post(f"/webhooks/{forge}", content=body, headers=headers)


def push_payload(
    repository: str, branch: str, before: str, after: str, clone_url: str, sender: str = "alice"
) -> dict[str, Any]:
    """A push delivery as GitHub (and Gitea) shape it."""
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "deleted": False,
        "repository": {
            "full_name": repository,
            "default_branch": "main",
            "clone_url": clone_url,
        },
        "head_commit": {"id": after, "message": "change things\n\nbody", "author": {"name": "A"}},
        "commits": [{"id": after, "added": [], "removed": [], "modified": ["README.md"]}],
        "sender": {"login": sender},
    }


def pull_request_payload(
    repository: str,
    head_repository: str,
    number: int,
    head_branch: str,
    sha: str,
    action: str = "opened",
    sender: str = "mallory",
) -> dict[str, Any]:
    """A pull request delivery as GitHub shapes it."""
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": "Fix the thing",
            "body": "",
            "draft": False,
            "labels": [{"name": "bug"}],
            "user": {"login": sender},
            "head": {"ref": head_branch, "sha": sha, "repo": {"full_name": head_repository}},
            "base": {"ref": "main", "repo": {"full_name": repository}},
        },
        "repository": {"full_name": repository, "default_branch": "main"},
        "sender": {"login": sender},
    }
