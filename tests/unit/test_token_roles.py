"""Roles of user tokens: what each may do, and how roles and names are checked."""

from __future__ import annotations

import pytest

from app.web.access import Session, permissions_of
from domain.tokens import Role, TokenRequestError, check_token_name, parse_role, refusal_message


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {Role.VIEWER}),
        (Role.OPERATOR, {Role.VIEWER, Role.OPERATOR}),
        (Role.ADMIN, {Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    ],
)
def test_each_role_may_do_what_the_roles_below_it_may(role: Role, allowed: set[Role]) -> None:
    assert {needed for needed in Role if role.allows(needed)} == allowed


def test_a_refusal_names_the_role_needed_and_the_role_held() -> None:
    message = refusal_message(Role.OPERATOR, Role.VIEWER)
    assert message == "this needs the operator role; the token has the viewer role"


def test_an_unknown_role_is_refused_naming_the_choices() -> None:
    assert parse_role("operator") is Role.OPERATOR
    with pytest.raises(TokenRequestError, match="unknown role 'root': choose one of viewer"):
        parse_role("root")


def test_token_names_are_short_and_printable() -> None:
    assert check_token_name("CI bot") == "CI bot"
    with pytest.raises(TokenRequestError, match="at most 100"):
        check_token_name("x" * 101)
    with pytest.raises(TokenRequestError, match="control characters"):
        check_token_name("a\nb")


def test_a_viewer_session_reads_but_may_not_operate() -> None:
    may = permissions_of(Session(Role.VIEWER, "c", 1.0), public=False)
    assert (may.view, may.operate, may.logged_in) == (True, False, True)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_operator_and_admin_sessions_may_operate(role: Role) -> None:
    may = permissions_of(Session(role, "c", 1.0), public=False)
    assert (may.view, may.operate, may.logged_in, may.role) == (True, True, True, role)


def test_a_visitor_reads_only_in_public_mode_and_never_operates() -> None:
    assert permissions_of(Session(), public=True).view
    assert not permissions_of(Session(), public=False).view
    assert not permissions_of(Session(), public=True).operate
