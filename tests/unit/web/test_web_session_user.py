"""A session remembers the name of the token it logged in with (the builds list's "mine")."""

from __future__ import annotations

from app.web.access import SessionCodec
from domain.tokens import Role

KEY = bytes(32)
ADMIN_HASH = "ab" * 32


def test_a_session_cookie_carries_the_tokens_name_and_verifies_with_it() -> None:
    codec = SessionCodec(KEY, ADMIN_HASH)
    cookie, issued = codec.issue(Role.OPERATOR, 1000.0, "ana")
    verified = codec.verify(cookie, 1001.0)
    assert (verified.role, verified.user) == (Role.OPERATOR, "ana")
    assert verified == issued


def test_a_session_issued_without_a_name_has_none() -> None:
    codec = SessionCodec(KEY, ADMIN_HASH)
    cookie, _ = codec.issue(Role.VIEWER, 1000.0)
    assert codec.verify(cookie, 1001.0).user == ""
