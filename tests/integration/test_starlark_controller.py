"""A ``.cirrus.star`` read by a real controller process: ``http`` only when the controller file
says ``starlark-http: true``; and by ``cirrus run``, whose ``fs`` reads the project directory.

The HTTP server the Starlark code calls is a real one on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.http_stub import StubHandler, serve_http
from tests.integration.test_controller_cli import cli, printed_token, start_controller
from tests.integration.test_local_run import cirrus_run

pytestmark = pytest.mark.integration

STAR_CALLING_HTTP = """
load("cirrus", "http")

def main(ctx):
    answer = http.get("{url}/name")
    return [{{"name": answer.body(), "script": "echo hi"}}]
"""


class NameServer(StubHandler):
    """Answers every GET with the text ``from-http``."""

    def do_GET(self) -> None:  # the name http.server dispatches to
        self.reply(200, "text/plain", b"from-http")


@pytest.fixture
def name_server() -> Iterator[str]:
    with serve_http(NameServer) as url:
        yield url


@pytest.mark.parametrize("allowed", [True, False])
def test_starlark_http_needs_the_controller_files_permission(
    tmp_path: Path, name_server: str, allowed: bool
) -> None:
    (tmp_path / ".cirrus.yml").write_text("")
    (tmp_path / ".cirrus.star").write_text(STAR_CALLING_HTTP.format(url=name_server))
    controller_file = tmp_path / "controller.yml"
    controller_file.write_text(f"starlark-http: {'true' if allowed else 'false'}\n")
    controller, url = start_controller(tmp_path, tmp_path / "c.db", "-f", str(controller_file))
    try:
        admin = printed_token(controller.stdout(), "admin token")
        submit = ("build", "submit", str(tmp_path / ".cirrus.yml"), "--controller", url, "--json")
        result = cli(tmp_path, *submit, token=admin)
    finally:
        assert controller.terminate() == 0
    if allowed:
        assert result.returncode == 0, result.stderr
        assert [task["name"] for task in json.loads(result.stdout)["tasks"]] == ["from-http"]
    else:
        assert result.returncode == 1
        assert "http" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_controller_file_with_a_non_boolean_starlark_http_is_exit_2(tmp_path: Path) -> None:
    controller_file = tmp_path / "controller.yml"
    controller_file.write_text("starlark-http: sometimes\n")
    result = cli(tmp_path, "controller", "run", "-f", str(controller_file), "--check")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["cirrus: starlark-http: must be true or false"]


def test_cirrus_run_lets_the_starlark_fs_module_read_the_project(tmp_path: Path) -> None:
    (tmp_path / "targets.txt").write_text("alpha\nbeta\n")
    (tmp_path / ".cirrus.yml").write_text("")
    (tmp_path / ".cirrus.star").write_text(
        'load("cirrus", "fs")\n'
        "def main(ctx):\n"
        '    names = fs.read("targets.txt").strip().split("\\n")\n'
        '    return [{"name": n, "script": "echo building " + n} for n in names]\n'
    )
    result = cirrus_run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alpha:main | building alpha" in result.stdout
    assert "beta:main | building beta" in result.stdout
