"""``cirrus build submit`` sends the ``.cirrus.star`` next to the ``.cirrus.yml`` (a real HTTP
server on 127.0.0.1 receives the submission)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from app.cli import cli
from tests.integration.http_stub import StubHandler, serve_http

STAR = 'def main(ctx):\n    return [{"name": "from-star", "script": "true"}]\n'
YAML = "task:\n  name: from-yaml\n  script: true\n"


class Submissions(StubHandler):
    """Records each ``POST /api/v1/builds`` body and answers with a new build."""

    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:  # the name http.server dispatches to
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if self.path == "/api/v1/snapshots":  # the project's snapshot, sent before the build
            answer = {"id": "s1", "sha256": hashlib.sha256(data).hexdigest(), "size": length}
            self.reply(201, "application/json", json.dumps(answer).encode())
            return
        body = json.loads(data)
        assert self.path == "/api/v1/builds"
        # Only the configuration matters here: the source has tests of its own.
        body.pop("source", None)
        Submissions.bodies.append(body)
        data = json.dumps({"id": "b1", "status": "EXECUTING", "tasks": []}).encode()
        self.reply(201, "application/json", data)


@pytest.fixture
def controller_url() -> Iterator[str]:
    Submissions.bodies = []
    with serve_http(Submissions) as url:
        yield url


def submit(controller_url: str, path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["build", "submit", str(path), "--controller", controller_url, "--token", "t"]
    )
    assert result.exit_code == 0, result.output


def test_the_star_file_next_to_the_yaml_file_is_sent_with_it(
    controller_url: str, tmp_path: Path
) -> None:
    (tmp_path / ".cirrus.yml").write_text(YAML)
    (tmp_path / ".cirrus.star").write_text(STAR)
    submit(controller_url, tmp_path / ".cirrus.yml")
    assert Submissions.bodies == [{"config": YAML, "environment": {}, "starlark": STAR}]


def test_without_a_star_file_the_submission_has_no_starlark(
    controller_url: str, tmp_path: Path
) -> None:
    (tmp_path / ".cirrus.yml").write_text(YAML)
    submit(controller_url, tmp_path / ".cirrus.yml")
    assert Submissions.bodies == [{"config": YAML, "environment": {}}]


def test_a_star_file_alone_is_submitted_with_an_empty_yaml_config(
    controller_url: str, tmp_path: Path
) -> None:
    (tmp_path / ".cirrus.star").write_text(STAR)
    submit(controller_url, tmp_path / ".cirrus.yml")
    assert Submissions.bodies == [{"config": "", "environment": {}, "starlark": STAR}]


def test_neither_file_is_a_usage_error(controller_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["build", "submit", str(tmp_path / ".cirrus.yml"), "--controller", controller_url]
    )
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert Submissions.bodies == []
