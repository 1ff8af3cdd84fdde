"""Who may do what in the web interface: signed session cookies, CSRF tokens and permissions.

A session is a cookie ``<payload>.<signature>``: the payload (base64 JSON) names the role, the
session's CSRF token, an expiry and a fingerprint of the admin token it logged in with, so
rotating the admin token ends every session. The signature is an HMAC-SHA256 with a key kept
in the store's settings, shared by every controller on one database. ``permissions_of`` is the
one place that decides what a session may do, from the role of the token it logged in with
(``domain.tokens``: the admin token, or a user token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from domain.store import SettingStore
from domain.tokens import Role

SESSION_COOKIE = "cirrus_session"
SESSION_KEY_SETTING = "web-session-key"
"""Store setting holding the hex key that signs session cookies."""
SESSION_SECONDS = 12 * 3600
"""How long a login lasts."""


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session cookie (``role`` is ``None`` for a visitor who did not log in)."""

    role: Role | None = None
    csrf: str = ""
    expires: float = 0.0
    user: str = ""  # the token's name, as builds record their submitter ("admin": admin token)


ANONYMOUS = Session()


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a session may do in the web interface."""

    view: bool = False
    operate: bool = False  # cancel, re-run, trigger, pause and resume
    logged_in: bool = False
    role: Role | None = None


def permissions_of(session: Session, *, public: bool) -> Permissions:
    """Return what ``session`` may do; ``public`` lets visitors read builds and logs."""
    if session.role is None:
        return Permissions(view=public)
    return Permissions(
        view=True,
        operate=session.role.allows(Role.OPERATOR),
        logged_in=True,
        role=session.role,
    )


async def session_key(store: SettingStore) -> bytes:
    """Return the key that signs session cookies, made once per database."""
    await store.put_setting_if_absent(SESSION_KEY_SETTING, secrets.token_hex(32))
    stored = await store.get_setting(SESSION_KEY_SETTING)
    if not stored:
        raise RuntimeError("the session key setting vanished")
    return bytes.fromhex(stored)


class SessionCodec:
    """Signs and verifies session cookies with one key and the admin token's hash."""

    def __init__(self, key: bytes, admin_token_sha256: str) -> None:
        self._key = key
        # Sessions of an older admin token no longer verify after a rotation.
        self._token_mark = self._sign(b"admin-token:" + admin_token_sha256.encode())[:16]

    def _sign(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def issue(self, role: Role, now: float, user: str = "") -> tuple[str, Session]:
        """Return a new session's cookie value and the session (``user``: the token's name)."""
        session = Session(role, secrets.token_urlsafe(24), now + SESSION_SECONDS, user)
        body = {"role": role.value, "csrf": session.csrf, "exp": session.expires, "user": user}
        body["tok"] = self._token_mark
        payload = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload.encode())}", session

    def verify(self, cookie: str | None, now: float) -> Session:
        """Return the session of a cookie, ``ANONYMOUS`` if it is missing, forged or expired."""
        if not cookie or "." not in cookie or not cookie.isascii():
            return ANONYMOUS
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload.encode())):
            return ANONYMOUS
        try:
            padded = payload + "=" * (-len(payload) % 4)
            body = json.loads(base64.urlsafe_b64decode(padded))
            role = Role(body["role"])
            user = str(body.get("user", ""))
            session = Session(role, str(body["csrf"]), float(body["exp"]), user)
            mark = str(body["tok"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return ANONYMOUS
        if session.expires <= now or not hmac.compare_digest(mark, self._token_mark):
            return ANONYMOUS
        return session


def csrf_valid(session: Session, submitted: str) -> bool:
    """Return whether a form's CSRF field is the session's token (constant time)."""
    if not session.csrf or not submitted:
        return False
    given = submitted.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(session.csrf.encode(), given)
