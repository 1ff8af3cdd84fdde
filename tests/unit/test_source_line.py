"""The one line that ``build status`` and ``build submit`` print about a build's source."""

from __future__ import annotations

from app.build_view import source_line
from domain.source import BuildSource

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_branch_build_shows_repository_branch_short_commit_and_title() -> None:
    source = BuildSource(
        repository="acme/widget", branch="main", commit=COMMIT, change_title="Fix  the\tparser\n"
    )
    assert (
        source_line(source) == "source: acme/widget, branch main, commit 0123456 'Fix the parser'"
    )


def test_a_pull_request_shows_its_number_head_and_base() -> None:
    source = BuildSource(repository="acme/widget", pr=42, branch="fix", base_branch="main")
    assert source_line(source) == "source: acme/widget, PR #42 (fix into main)"


def test_a_tag_is_shown_instead_of_a_branch() -> None:
    assert source_line(BuildSource(tag="v1.0", commit=COMMIT)) == "source: tag v1.0, commit 0123456"


def test_a_snapshot_outside_git_shows_only_its_id() -> None:
    assert source_line(BuildSource(snapshot="abc")) == "source: snapshot abc"
    assert source_line(BuildSource()) == "source: none"
