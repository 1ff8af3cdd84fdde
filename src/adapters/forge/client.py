"""The forge API calls the controller makes, over httpx: GitHub's REST API and Gitea's copy of
it (the same paths under ``/api/v1``; the registered API URL already ends there).

``ForgeClient`` implements the port ``domain.forge_client.ForgeClient`` and raises its errors
(``ForgeError``, ``ForgeUnavailable``, ``ForgeRateLimited``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from domain.forge_client import ForgeError, ForgeRateLimited, ForgeUnavailable
from domain.forge_store import StatusPost
from domain.ports import Clock
from domain.repositories import Forge, Repository

DEFAULT_TIMEOUT_SECONDS = 20.0


def forge_client_factory(clock: Clock) -> Callable[[Repository, str], ForgeClient]:
    """Return what makes the client of a repository's forge from the repository and its token."""

    def client(repository: Repository, token: str) -> ForgeClient:
        return ForgeClient(repository.forge, repository.api_url, token, clock)

    return client


class ForgeClient:
    """One repository host's API with one token."""

    def __init__(
        self,
        forge: Forge,
        api_url: str,
        token: str,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.forge = forge
        self._clock = clock
        headers = {"Accept": "application/json", "User-Agent": "cirrus-controller"}
        if token:
            headers["Authorization"] = f"token {token}"
        if forge is Forge.GITHUB:
            headers["Accept"] = "application/vnd.github+json"
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            headers=headers,
            timeout=DEFAULT_TIMEOUT_SECONDS,
            transport=transport,
        )
        self.pause_until: float | None = None
        """After a call, when the rate limit's remaining calls are used up: its reset time."""

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> ForgeClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def file_at(self, repository: str, path: str, ref: str) -> str | None:
        """Return the text of ``path`` at ``ref`` (None when there is no such file)."""
        answer = await self._call("GET", f"/repos/{repository}/contents/{path}", {"ref": ref})
        if answer is None:
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), str):
            raise ForgeError(f"{repository}: {path} at {ref} is not a file")
        try:
            return base64.b64decode(answer["content"]).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ForgeError(f"{repository}: {path} at {ref} is not UTF-8 text") from error

    async def branch_head(self, repository: str, branch: str) -> str:
        """Return the commit a branch points at."""
        answer = await self._call("GET", f"/repos/{repository}/branches/{quote(branch, '')}")
        commit = answer.get("commit") if isinstance(answer, dict) else None
        sha = commit.get("sha") or commit.get("id") if isinstance(commit, dict) else None
        if not isinstance(sha, str) or not sha:
            raise ForgeError(f"{repository}: no branch {branch!r}")
        return sha

    async def compare_files(self, repository: str, base: str, head: str) -> tuple[str, ...] | None:
        """Return the files changed from ``base`` to ``head`` (None when the forge cannot say)."""
        answer = await self._call("GET", f"/repos/{repository}/compare/{base}...{head}")
        return _filenames(answer.get("files") if isinstance(answer, dict) else None)

    async def pull_files(self, repository: str, number: int) -> tuple[str, ...] | None:
        """Return the files a pull request changes (None when the forge cannot say)."""
        answer = await self._call(
            "GET", f"/repos/{repository}/pulls/{number}/files", {"per_page": "100"}
        )
        return _filenames(answer)

    async def permission(self, repository: str, user: str) -> str:
        """Return ``user``'s permission on the repository (admin, write, read or none)."""
        if not user:
            return "none"
        answer = await self._call(
            "GET", f"/repos/{repository}/collaborators/{quote(user, '')}/permission"
        )
        value = answer.get("permission") if isinstance(answer, dict) else None
        return value if isinstance(value, str) and value else "none"

    async def post_status(self, post: StatusPost) -> None:
        """Post a commit status."""
        body = {"state": post.state, "context": post.context, "description": post.description}
        if post.target_url:
            body["target_url"] = post.target_url
        await self._call("POST", f"/repos/{post.repository}/statuses/{post.commit}", json=body)

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        """Return the JSON answer (None for a 404 of a GET)."""
        what = f"{method} {path}"
        try:
            response = await self._http.request(method, path, params=params, json=json)
        except httpx.HTTPError as error:
            raise ForgeUnavailable(f"{what}: {error or type(error).__name__}") from error
        self._note_limit(response)
        status = response.status_code
        if status in (403, 429) and self._limited(response):
            raise ForgeRateLimited(f"{what}: rate limited", self._retry_at(response))
        if status >= 500:
            raise ForgeUnavailable(f"{what}: HTTP {status}")
        if status == 404 and method == "GET":
            return None
        if status >= 400:
            raise ForgeError(f"{what}: HTTP {status}: {response.text[:200]}")
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as error:
            raise ForgeError(f"{what}: the answer is not JSON") from error

    def _limited(self, response: httpx.Response) -> bool:
        headers = response.headers
        return "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"

    def _retry_at(self, response: httpx.Response) -> float:
        now = self._clock.now()
        after = response.headers.get("retry-after", "")
        if after.isdigit():
            return now + int(after)
        reset = response.headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            return max(now, float(reset))
        return now + 60.0

    def _note_limit(self, response: httpx.Response) -> None:
        if response.headers.get("x-ratelimit-remaining") == "0":
            self.pause_until = self._retry_at(response)


def _filenames(answer: object) -> tuple[str, ...] | None:
    if not isinstance(answer, list):
        return None
    names = [entry.get("filename") for entry in answer if isinstance(entry, dict)]
    if not all(isinstance(name, str) for name in names):
        return None
    return tuple(sorted({str(name) for name in names}))
