"""``http`` of the ``cirrus`` Starlark module against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import ClassVar

import pytest

from adapters.cirrus_config.starlark import StarlarkContext, evaluate_starlark
from domain.cirrus_config.nodes import CirrusConfigError, Node, Pairs, Scalar
from tests.integration.http_stub import StubHandler, serve_http


class Recorder(StubHandler):
    """Answers every request with JSON describing it, and records it."""

    seen: ClassVar[list[dict[str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = {
            "method": self.command,
            "path": self.path,
            "header": self.headers.get("X-Test", ""),
            "content_type": self.headers.get("Content-Type", ""),
            "body": self.rfile.read(length).decode(),
        }
        Recorder.seen.append(request)
        self.reply(201, "application/json", json.dumps(request).encode())

    do_GET = do_POST = _answer  # the names http.server dispatches to


@pytest.fixture
def server_url() -> Iterator[str]:
    Recorder.seen = []
    with serve_http(Recorder) as url:
        yield url


def no_yaml(text: str) -> Node:
    raise AssertionError(text)


def evaluate(source: str, allow_http: bool) -> Pairs:
    return evaluate_starlark(source, StarlarkContext(load_yaml=no_yaml, allow_http=allow_http))


def test_an_allowed_get_returns_status_body_headers_and_json(server_url: str) -> None:
    source = f"""
load("cirrus", "http")
def main(ctx):
    r = http.get("{server_url}/versions", params={{"os": "linux"}}, headers={{"X-Test": "yes"}})
    return {{"status": r.status_code, "kind": r.headers["Content-Type"],
             "path": r.json()["path"], "header": r.json()["header"], "raw": r.body()[:1]}}
"""
    result = evaluate(source, allow_http=True)
    assert result.get("status") == Scalar("201", 201)
    assert result.get("kind") == Scalar("application/json", "application/json")
    assert result.get("path") == Scalar("/versions?os=linux", "/versions?os=linux")
    assert result.get("header") == Scalar("yes", "yes")
    assert result.get("raw") == Scalar("{", "{")


def test_an_allowed_post_sends_a_json_body(server_url: str) -> None:
    source = f"""
load("cirrus", "http")
def main():
    r = http.post("{server_url}/hook", json_body={{"tasks": [1, 2]}})
    return [("status", r.status_code)]
"""
    assert evaluate(source, allow_http=True).get("status") == Scalar("201", 201)
    assert Recorder.seen[-1]["method"] == "POST"
    assert Recorder.seen[-1]["content_type"] == "application/json"
    assert json.loads(str(Recorder.seen[-1]["body"])) == {"tasks": [1, 2]}


def test_a_refused_request_never_reaches_the_server(server_url: str) -> None:
    source = f'load("cirrus", "http")\ndef main():\n    return http.get("{server_url}/")\n'
    with pytest.raises(CirrusConfigError, match=r"http\.get is not allowed"):
        evaluate(source, allow_http=False)
    assert Recorder.seen == []


def test_a_connection_failure_names_the_url() -> None:
    # Port 9 (discard) on the loopback: nothing listens there in a test environment.
    source = 'load("cirrus", "http")\ndef main():\n    return http.get("http://127.0.0.1:9/x")\n'
    with pytest.raises(CirrusConfigError, match=r"http\.get http://127\.0\.0\.1:9/x"):
        evaluate(source, allow_http=True)
