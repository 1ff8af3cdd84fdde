"""Credentials of the controller: registration, session and task secrets, the admin token, and
the roles of user tokens (``ApiAccess``: the one place that says which role a token has).

Every comparison runs in constant time (``hmac.compare_digest``) so that response times do not
leak how much of a guess was right. Tokens never appear in log lines or error messages.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.store import (
    TaskAssignment,
    WorkerCheckIn,
    WorkerRegistry,
    hash_token,
    token_matches,
)
from domain.tokens import Role, UserTokenStore

REGISTRATION_TOKEN_HEADER = "registration-token"
SESSION_TOKEN_HEADER = "session-token"
WORKER_NAME_HEADER = "worker-name"
TASK_ID_HEADER = "org.cirruslabs.task-id"
CLIENT_SECRET_HEADER = "org.cirruslabs.client-secret"
AGENT_CALL = ":agent-call"
"""Set (by the gRPC bridge only) on a call of the original Go agent, which names its task and
client secret and nothing else. No HTTP header or gRPC metadata key can start with ``:``."""


class AuthError(Exception):
    """A call's credentials are refused; ``code`` is the Twirp code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def unauthenticated(message: str) -> AuthError:
    """Return the error of missing or wrong credentials (the worker registers again)."""
    return AuthError("unauthenticated", message)


def permission_denied(message: str) -> AuthError:
    """Return the error of valid credentials asking for something that is not theirs."""
    return AuthError("permission_denied", message)


def tokens_equal(given: str, expected: str) -> bool:
    """Return whether two tokens are equal, compared in constant time (empty never matches)."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class TokenHash:
    """The SHA-256 (hex) of a token: all the controller keeps of its registration and admin
    tokens, so that neither its memory nor its database holds them in clear."""

    sha256: str

    @classmethod
    def of(cls, token: str) -> TokenHash:
        """Return the hash of ``token``."""
        return cls(hash_token(token))

    def matches(self, given: str) -> bool:
        """Return whether ``given`` is the token, compared in constant time (empty: never)."""
        return bool(self.sha256) and bool(given) and token_matches(given, self.sha256)


def new_session_token() -> str:
    """Return a fresh random session token."""
    return secrets.token_urlsafe(32)


def bearer_token(authorization: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header ("" if there is none)."""
    if not authorization:
        return ""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(frozen=True, slots=True)
class TaskCaller:
    """A task-scoped call that passed authentication: its worker and its task's assignment."""

    worker_name: str
    task: TaskAssignment


class WorkerAuthenticator:
    """Checks the credentials of worker calls against the registration token and the store."""

    def __init__(self, store: WorkerRegistry, registration_token: TokenHash) -> None:
        self._store = store
        self._registration_token = registration_token

    def check_registration_token(self, token: str) -> None:
        """Raise ``AuthError`` unless ``token`` is the registration token."""
        if not self._registration_token.matches(token):
            raise unauthenticated("invalid registration token")

    async def worker(self, headers: Mapping[str, str], *, session_optional: bool = False) -> str:
        """Return the calling worker's name, or raise ``AuthError``.

        ``session_optional`` admits the registration token with an empty session token: how
        ``cirrus worker pause``/``resume`` speak, from a process that never registered.
        """
        name = self._claimed_name(headers)
        session = headers.get(SESSION_TOKEN_HEADER, "")
        if not session and session_optional:
            return name
        # Only the session hash is read: the worker's labels and resources are not needed here.
        self._check_session(name, headers, await self._store.worker_session_hash(name))
        return name

    async def check_in(
        self,
        headers: Mapping[str, str],
        resources_in_use: Mapping[str, float],
        running_task_ids: Sequence[str],
        *,
        queue_limit: int,
    ) -> WorkerCheckIn:
        """Authenticate a ``Poll`` and record it in one store call (``check_in_worker``):
        return what the store read, or raise ``AuthError`` (nothing recorded)."""
        name = self._claimed_name(headers)
        session = headers.get(SESSION_TOKEN_HEADER, "")
        checked_in = None
        if session:
            checked_in = await self._store.check_in_worker(
                name,
                hash_token(session),
                resources_in_use,
                running_task_ids,
                queue_limit=queue_limit,
            )
        if checked_in is None:
            raise unauthenticated(f"no valid session for worker {name!r}; register again")
        return checked_in

    async def task(self, headers: Mapping[str, str]) -> TaskCaller:
        """Return the calling worker and the task it names, or raise ``AuthError``."""
        task_id = headers.get(TASK_ID_HEADER, "")
        if headers.get(AGENT_CALL):
            return await self._agent_task(task_id, headers.get(CLIENT_SECRET_HEADER, ""))
        if not task_id:
            await self.worker(headers)  # a worker without a valid session hears that first
            raise permission_denied(f"missing {TASK_ID_HEADER} header")
        worker_name = self._claimed_name(headers)
        secret = headers.get(CLIENT_SECRET_HEADER, "")
        # One read for both checks; the assignment alone (no spec) decides about the task.
        credentials = await self._store.task_credentials(worker_name, task_id)
        self._check_session(worker_name, headers, credentials.session_token_hash)
        record = credentials.assignment
        if (
            record is None
            or record.worker != worker_name
            or not tokens_equal(secret, record.client_secret)
        ):
            raise permission_denied(f"task {task_id} is not assigned to worker {worker_name!r}")
        return TaskCaller(worker_name, record)

    async def _agent_task(self, task_id: str, secret: str) -> TaskCaller:
        """Return the task an agent names with its client secret (the secret is the credential,
        as in Cirrus CI), or raise ``AuthError``."""
        if not task_id:
            raise permission_denied(f"missing {TASK_ID_HEADER} metadata")
        record = (await self._store.task_credentials("", task_id)).assignment
        if record is None or not record.worker or not tokens_equal(secret, record.client_secret):
            raise permission_denied(f"task {task_id} is not running with that client secret")
        return TaskCaller(record.worker, record)

    def _claimed_name(self, headers: Mapping[str, str]) -> str:
        """Check the registration token; return the worker name the call claims (unchecked)."""
        self.check_registration_token(headers.get(REGISTRATION_TOKEN_HEADER, ""))
        name = headers.get(WORKER_NAME_HEADER, "")
        if not name:
            raise unauthenticated(f"missing {WORKER_NAME_HEADER} header")
        return name

    @staticmethod
    def _check_session(name: str, headers: Mapping[str, str], session_hash: str | None) -> None:
        session = headers.get(SESSION_TOKEN_HEADER, "")
        if session_hash is None or not session or not token_matches(session, session_hash):
            raise unauthenticated(f"no valid session for worker {name!r}; register again")


ADMIN_IDENTITY = "admin"
"""Who the admin token is, as builds record their submitter."""


class ApiAccess:
    """Says which role a token has: the admin token is ``admin``; a user token has the role
    it was made with (looked up by its hash in ``tokens``); anything else has none."""

    def __init__(self, admin_token: TokenHash, tokens: UserTokenStore | None = None) -> None:
        self.admin_token = admin_token
        self.tokens = tokens

    async def role_of(self, token: str) -> Role | None:
        """Return the role of ``token`` (``None`` if it is no token of this controller)."""
        if not token:
            return None
        if self.admin_token.matches(token):
            return Role.ADMIN
        if self.tokens is None:
            return None
        # The hash is looked up, not compared: a 256-bit random token's hash gives nothing away.
        return await self.tokens.role_of_token(hash_token(token))

    async def role_of_header(self, authorization: str | None) -> Role | None:
        """Return the role of the Bearer token of an ``Authorization`` header."""
        return await self.role_of(bearer_token(authorization))

    async def identity_of(self, token: str) -> tuple[str, Role] | None:
        """Return who ``token`` is: ``("admin", ADMIN)`` for the admin token, a user token's
        name (``token #<id>`` when it has none) and role; ``None`` for no token of this one."""
        if not token:
            return None
        if self.admin_token.matches(token):
            return ADMIN_IDENTITY, Role.ADMIN
        if self.tokens is None:
            return None
        found = await self.tokens.token_of_hash(hash_token(token))
        return None if found is None else (found.name or f"token #{found.id}", found.role)
