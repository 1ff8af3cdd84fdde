"""Sessions, CSRF and permissions of the web interface (``app.web.access``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.web.access import (
    ANONYMOUS,
    Permissions,
    Session,
    SessionCodec,
    csrf_valid,
    permissions_of,
)
from domain.tokens import Role

KEY = bytes(range(32))
NOW = 1_800_000_000.0


def test_an_issued_cookie_verifies_as_its_session() -> None:
    codec = SessionCodec(KEY, "a" * 64)
    cookie, session = codec.issue(Role.ADMIN, NOW)
    assert codec.verify(cookie, NOW + 60) == session
    assert session.role is Role.ADMIN
    assert session.csrf


def test_a_cookie_with_a_changed_payload_is_anonymous() -> None:
    codec = SessionCodec(KEY, "a" * 64)
    cookie, _ = codec.issue(Role.ADMIN, NOW)
    payload, _, signature = cookie.rpartition(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    assert codec.verify(forged, NOW) is ANONYMOUS


def test_a_cookie_signed_with_another_key_is_anonymous() -> None:
    cookie, _ = SessionCodec(bytes(32), "a" * 64).issue(Role.ADMIN, NOW)
    assert SessionCodec(KEY, "a" * 64).verify(cookie, NOW) is ANONYMOUS


def test_rotating_the_admin_token_ends_the_sessions_it_opened() -> None:
    cookie, _ = SessionCodec(KEY, "a" * 64).issue(Role.ADMIN, NOW)
    assert SessionCodec(KEY, "b" * 64).verify(cookie, NOW) is ANONYMOUS


def test_an_expired_cookie_is_anonymous() -> None:
    codec = SessionCodec(KEY, "a" * 64)
    cookie, session = codec.issue(Role.ADMIN, NOW)
    assert codec.verify(cookie, session.expires) is ANONYMOUS


@given(st.text(max_size=200))
def test_any_other_cookie_text_is_anonymous(text: str) -> None:
    assert SessionCodec(KEY, "a" * 64).verify(text, NOW) is ANONYMOUS


def test_csrf_needs_the_sessions_own_token() -> None:
    session = Session(Role.ADMIN, "token-1", NOW)
    assert csrf_valid(session, "token-1")
    assert not csrf_valid(session, "token-2")
    assert not csrf_valid(session, "")
    assert not csrf_valid(ANONYMOUS, "")


def test_visitors_read_only_in_public_mode_and_admins_operate() -> None:
    assert permissions_of(ANONYMOUS, public=False) == Permissions()
    assert permissions_of(ANONYMOUS, public=True) == Permissions(view=True)
    admin = Session(Role.ADMIN, "t", NOW)
    assert permissions_of(admin, public=False) == Permissions(True, True, True, Role.ADMIN)
