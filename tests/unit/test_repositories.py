"""Registered repositories: names, forges, URLs, default clone URLs, and what a task gets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.repositories import (
    CLONE_TOKEN_VARIABLE,
    CLONE_URL_VARIABLE,
    SNAPSHOT_VARIABLE,
    Forge,
    Repository,
    RepositoryError,
    check_repository_name,
    check_url,
    default_clone_url,
    parse_forge,
    repository_key,
    task_repository_environment,
)

REGISTERED = Repository(
    name="Acme/App",
    forge=Forge.GITHUB,
    api_url="https://api.github.com",
    clone_url="https://github.com/Acme/App.git",
    encrypted_token="ENCRYPTED[v1:token]",
    encrypted_webhook_secret="ENCRYPTED[v1:secret]",
)


def test_a_repository_name_is_owner_slash_name_trimmed() -> None:
    assert check_repository_name("  acme/app.js ") == "acme/app.js"
    assert check_repository_name("my-org/under_score") == "my-org/under_score"


@pytest.mark.parametrize(
    "name", ["acme", "acme/app/extra", "/app", "acme/", "ac me/app", "acme/..", "./app", ""]
)
def test_a_name_that_is_not_owner_slash_name_is_refused_naming_it(name: str) -> None:
    with pytest.raises(RepositoryError, match="is not OWNER/NAME") as raised:
        check_repository_name(name)
    assert repr(name) in str(raised.value)


def test_names_differing_in_case_are_one_repository() -> None:
    assert repository_key("Acme/App") == repository_key("acme/app") == "acme/app"
    assert REGISTERED.key == "acme/app"


def test_forges_are_github_and_gitea_in_any_case() -> None:
    assert parse_forge("GitHub") is Forge.GITHUB
    assert parse_forge("gitea") is Forge.GITEA
    with pytest.raises(RepositoryError, match=r"unknown forge 'gitlab' \(known: github, gitea\)"):
        parse_forge("gitlab")


def test_a_url_loses_its_trailing_slash_and_keeps_port_and_path() -> None:
    assert check_url("https://gitea.example:3000/api/v1/", "--url") == (
        "https://gitea.example:3000/api/v1"
    )
    assert check_url("http://127.0.0.1:8080", "--url") == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com",
        "https://",
        "https://user:pass@example.com/api",
        "https://example.com/api?token=x",
        "https://example.com/#x",
        "example.com/api",
    ],
)
def test_a_url_with_another_scheme_a_user_a_query_or_a_fragment_is_refused(url: str) -> None:
    with pytest.raises(RepositoryError, match=r"^--clone-url: .* is not an http"):
        check_url(url, "--clone-url")


def test_the_public_github_api_clones_from_github_com() -> None:
    assert default_clone_url(Forge.GITHUB, "https://api.github.com/", "acme/app") == (
        "https://github.com/acme/app.git"
    )


@pytest.mark.parametrize(
    ("forge", "api_url", "clone_url"),
    [
        (Forge.GITHUB, "https://ghe.example/api/v3", "https://ghe.example/acme/app.git"),
        (Forge.GITEA, "https://gitea.example/api/v1", "https://gitea.example/acme/app.git"),
        (
            Forge.GITEA,
            "http://127.0.0.1:3000/git/api/v1/",
            "http://127.0.0.1:3000/git/acme/app.git",
        ),
        (Forge.GITEA, "https://forgejo.example", "https://forgejo.example/acme/app.git"),
        (Forge.GITEA, "https://code.example/api", "https://code.example/acme/app.git"),
    ],
)
def test_another_api_url_clones_from_its_web_root(
    forge: Forge, api_url: str, clone_url: str
) -> None:
    assert default_clone_url(forge, api_url, "acme/app") == clone_url


@given(
    owner=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    name=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,5})?(:[0-9]{1,5})?", fullmatch=True),
)
def test_a_default_clone_url_is_a_checked_url_ending_in_the_repository(
    owner: str, name: str, host: str
) -> None:
    clone_url = default_clone_url(Forge.GITEA, f"https://{host}/api/v1", f"{owner}/{name}")
    assert check_url(clone_url, "clone") == clone_url
    assert clone_url == f"https://{host}/{owner}/{name}.git"


def test_a_task_of_a_registered_repository_gets_its_token_and_clone_url() -> None:
    added = task_repository_environment({"CIRRUS_BRANCH": "main"}, REGISTERED, "tok")
    assert added == {
        CLONE_URL_VARIABLE: "https://github.com/Acme/App.git",
        CLONE_TOKEN_VARIABLE: "tok",
    }


def test_the_registered_token_wins_over_one_the_configuration_set() -> None:
    added = task_repository_environment({CLONE_TOKEN_VARIABLE: "mine"}, REGISTERED, "tok")
    assert added[CLONE_TOKEN_VARIABLE] == "tok"


@pytest.mark.parametrize(
    "source",
    [{CLONE_URL_VARIABLE: "https://mirror.example/acme/app.git"}, {SNAPSHOT_VARIABLE: "abc"}],
)
def test_a_task_with_a_source_of_its_own_keeps_it_and_only_gets_the_token(
    source: dict[str, str],
) -> None:
    assert task_repository_environment(source, REGISTERED, "tok") == {CLONE_TOKEN_VARIABLE: "tok"}


def test_a_task_of_an_unregistered_repository_gets_nothing() -> None:
    assert task_repository_environment({}, None, "") == {}
