"""Inputs that used to stall, bloat or crash ``cirrus controller run`` (issue 14, items 5-7).

A real controller process on 127.0.0.1. Raw sockets send what a well-behaved client would not:
a ``Content-Length`` of 50 MB with only a few bytes behind it, or an endless chunked body. A
controller that reads before it checks would wait for the rest; the tests expect the answer
while most of the body is still unsent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.test_controller_cli import Process, cli, start_controller

pytestmark = pytest.mark.integration

REGISTRATION = "registration-token-for-limits"
ADMIN = "admin-token-for-limits"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
POLL = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/Poll"
APPEND_LOGS = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusCIService/AppendLogs"
ANSWER_DEADLINE = 10.0
FILE_MAX_BYTES = 65_536
FILE_MAX_NODES = 1_000_000


def alias_bomb(levels: int) -> str:
    """A few hundred bytes whose aliases expand to ten to the power ``levels`` scalars."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def start(tmp_path: Path, *extra: str) -> tuple[Process, str]:
    """A controller with known tokens."""
    return start_controller(
        tmp_path,
        tmp_path / "controller.db",
        "--registration-token",
        REGISTRATION,
        "--admin-token",
        ADMIN,
        *extra,
    )


@pytest.fixture(scope="module")
def default_controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    """A controller with the default limits."""
    process, url = start(tmp_path_factory.mktemp("default-limits"))
    try:
        yield process, url
    finally:
        process.terminate()


@pytest.fixture(scope="module")
def configured_controller(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Process, str]]:
    """A controller whose file lowers the size limit and raises the node limit."""
    tmp_path = tmp_path_factory.mktemp("configured-limits")
    config = tmp_path / "controller.yml"
    config.write_text(
        f"config-max-bytes: {FILE_MAX_BYTES}\nconfig-max-nodes: {FILE_MAX_NODES}\n",
        encoding="utf-8",
    )
    process, url = start(tmp_path, "-f", str(config))
    try:
        yield process, url
    finally:
        process.terminate()


def submit(url: str, body: object) -> httpx.Response:
    """POST a build body, as JSON."""
    return httpx.post(f"{url}/api/v1/builds", json=body, headers=AUTH, timeout=60)


def post_raw(url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST ``body`` as it is (no JSON encoding by the client)."""
    full = {"Content-Type": "application/json", **headers}
    return httpx.post(f"{url}{path}", content=body, headers=full, timeout=60)


def raw_status(url: str, head: str, parts: Iterable[bytes]) -> int:
    """Send a request head and body parts on a raw socket; return the status of the answer,
    which must come within ``ANSWER_DEADLINE`` although the body may never be complete."""
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
        connection.settimeout(ANSWER_DEADLINE)
        try:
            connection.sendall(head.encode("ascii"))
            for part in parts:
                connection.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the controller answered and closed: read what it said
        answer = b""
        deadline = time.monotonic() + ANSWER_DEADLINE
        while b"\r\n" not in answer and time.monotonic() < deadline:
            try:
                chunk = connection.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 "), f"no answer within {ANSWER_DEADLINE}s: {answer!r}"
    return int(answer.split()[1])


def head(path: str, length: int | None, headers: dict[str, str]) -> str:
    """A POST request head; ``length`` None sends the body chunked."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return "\r\n".join(lines) + "\r\n\r\n"


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """``total`` bytes of a JSON string, chunked, never terminated (the sender never ends)."""
    yield f"{size:x}\r\n".encode() + b'{"a":"' + b"x" * (size - 6) + b"\r\n"
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"


# --- 5: configurations that stall ------------------------------------------------------------


def test_an_alias_bomb_is_refused_naming_the_node_limit(
    default_controller: tuple[Process, str],
) -> None:
    # 10**9 scalars once expanded: without the limit the answer would never come.
    _, url = default_controller
    response = submit(url, {"config": alias_bomb(9)})
    assert response.status_code == 400, response.text
    assert "config-max-nodes" in response.json()["error"]


def test_a_config_over_a_mebibyte_is_413_naming_the_size_limit(
    default_controller: tuple[Process, str],
) -> None:
    _, url = default_controller
    config = "task:\n  script: echo hi\n" + "# padding\n" * 110_000
    response = submit(url, {"config": config})
    assert response.status_code == 413, response.text
    assert (
        f"config is {len(config)} bytes, more than the limit of 1048576 (config-max-bytes)"
        in (response.json()["error"])
    )


def test_a_fifty_megabyte_body_is_413_before_it_is_read(
    default_controller: tuple[Process, str],
) -> None:
    _, url = default_controller
    headers = {"Authorization": f"Bearer {ADMIN}"}
    status = raw_status(url, head("/api/v1/builds", 50_000_000, headers), [b'{"config": "'])
    assert status == 413


def test_the_controller_file_sets_the_size_limit_for_config_and_starlark(
    configured_controller: tuple[Process, str],
) -> None:
    _, url = configured_controller
    big = "# padding\n" * (FILE_MAX_BYTES // 10 + 1)
    small = "task:\n  script: echo hi\n"
    for body, what in (
        ({"config": small + big}, "config"),
        ({"config": small, "starlark": big}, "starlark"),
    ):
        response = submit(url, body)
        assert response.status_code == 413, response.text
        assert f"{what} is " in response.json()["error"]
        assert f"the limit of {FILE_MAX_BYTES} (config-max-bytes)" in response.json()["error"]


def test_healthz_and_the_api_answer_promptly_while_a_slow_parse_runs(
    configured_controller: tuple[Process, str],
) -> None:
    process, url = configured_controller
    answers: list[httpx.Response] = []
    submission = threading.Thread(
        target=lambda: answers.append(submit(url, {"config": alias_bomb(9)}))
    )
    started = time.monotonic()
    submission.start()
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while submission.is_alive():
            before = time.monotonic()
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/v1/workers", headers=AUTH).status_code == 200
            latencies.append(time.monotonic() - before)
    submission.join()
    parse_seconds = time.monotonic() - started
    # A million nodes (ten times the default limit) take seconds to expand, and the controller
    # kept answering meanwhile: a parse on the event loop would hold one answer for all of it.
    # What delay remains is the garbage collector walking the parser's objects (a few tenths
    # of a second at this size), so the bound is relative to the parse, not a fixed time.
    assert parse_seconds > 1.0, parse_seconds
    assert len(latencies) >= 5, latencies
    assert max(latencies) < parse_seconds / 2, (sorted(latencies)[-5:], parse_seconds)
    assert answers[0].status_code == 400, answers[0].text
    assert f"more than {FILE_MAX_NODES} nodes" in answers[0].json()["error"]
    assert "Traceback" not in process.stderr()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("config-max-bytes: 0", "config-max-bytes: must be a whole number from 1, not '0'"),
        ("config-max-nodes: lots", "config-max-nodes: must be a whole number from 1, not 'lots'"),
        ("config-max-depth: 500", "config-max-depth: must be a whole number from 1 up to 200"),
    ],
)
def test_a_bad_limit_in_the_controller_file_is_exit_2_naming_the_key(
    tmp_path: Path, line: str, message: str
) -> None:
    config = tmp_path / "controller.yml"
    config.write_text(line + "\n", encoding="utf-8")
    result = cli(tmp_path, "controller", "run", "--check", "-f", str(config), timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


# --- 6: bodies that bloat ---------------------------------------------------------------------


def test_a_twirp_call_without_the_registration_token_is_refused_before_its_body_is_read(
    default_controller: tuple[Process, str],
) -> None:
    _, url = default_controller
    status = raw_status(url, head(POLL, 50_000_000, {"worker-name": "w"}), [b"{" * 1024])
    assert status == 401


def test_a_twirp_body_over_the_methods_cap_is_413_by_its_length_or_once_it_passes_the_cap(
    default_controller: tuple[Process, str],
) -> None:
    _, url = default_controller
    headers = {"registration-token": REGISTRATION, "worker-name": "w"}
    assert raw_status(url, head(POLL, 50_000_000, headers), [b'{"a": "']) == 413
    # Chunked: no length to judge by; the answer comes once 256 KiB have arrived.
    assert raw_status(url, head(POLL, None, headers), chunked(1024 * 1024)) == 413
    # AppendLogs carries log chunks: 1 MiB base64-encoded is within its cap, 3 MiB is not.
    assert raw_status(url, head(APPEND_LOGS, 3 * 1024 * 1024, headers), [b"{"]) == 413
    body = json.dumps({"commandName": "main", "data": "QUJD" * 350_000}).encode()
    answer = post_raw(url, APPEND_LOGS, body, headers)
    assert answer.status_code != 413, answer.text


def test_unauthenticated_fifty_megabyte_bodies_do_not_grow_the_controller(
    default_controller: tuple[Process, str],
) -> None:
    process, url = default_controller
    peak_before = memory_kib(process, "VmHWM")
    body = b'{"workerInfo": {"labels": {"name": "' + b"x" * 50_000_000 + b'"}}}'
    for _ in range(3):
        # The controller answers 401 and closes: the client may fail to send the rest.
        assert try_post(url, POLL, body, {"worker-name": "w"}) in (401, None)
    assert memory_kib(process, "VmHWM") - peak_before < 40 * 1024


def try_post(url: str, path: str, body: bytes, headers: dict[str, str]) -> int | None:
    """POST ``body``; return the status, or None if the controller closed before it was sent."""
    try:
        return post_raw(url, path, body, headers).status_code
    except httpx.TransportError:
        return None


def memory_kib(process: Process, field: str) -> int:
    """A memory figure of ``/proc/PID/status`` (``VmHWM``: the peak resident size), in KiB."""
    status = Path(f"/proc/{process.process.pid}/status").read_text(encoding="ascii")
    line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1])


# --- 7: malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("task:\n  script: echo \x00\n", "character U+0000 is not allowed"),
        ("task:\n  script: echo \x1b[0m\n", "character U+001B is not allowed"),
    ],
)
def test_nul_and_control_characters_in_config_are_400_naming_the_character_and_place(
    default_controller: tuple[Process, str], config: str, expected: str
) -> None:
    _, url = default_controller
    response = submit(url, {"config": config})
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]
    assert "(line 2, column 16)" in response.json()["error"]


def test_a_lone_surrogate_anywhere_in_the_body_is_400(
    default_controller: tuple[Process, str],
) -> None:
    _, url = default_controller
    for body in (
        b'{"config": "task:\\n  script: echo \\ud800\\n"}',
        b'{"config": "task:\\n  script: echo\\n", "environment": {"\\udfff": "x"}}',
    ):
        response = post_raw(url, "/api/v1/builds", body, AUTH)
        assert response.status_code == 400, response.text
        assert "lone surrogate" in response.json()["error"]


def test_json_nested_a_hundred_thousand_deep_is_400_on_the_api_and_on_twirp(
    default_controller: tuple[Process, str],
) -> None:
    process, url = default_controller
    deep = b"[" * 100_000 + b"]" * 100_000
    response = post_raw(url, "/api/v1/builds", deep, AUTH)
    assert response.status_code == 400, response.text
    assert "nested" in response.json()["error"]
    worker = {"registration-token": REGISTRATION, "worker-name": "w"}
    for headers, status in (({}, 401), (worker, 400)):
        answer = post_raw(url, POLL, b'{"workerInfo": ' + deep[:200_000] + b"}", headers)
        assert answer.status_code == status, answer.text
    assert "nested" in answer.json()["msg"]
    assert "Traceback" not in process.stderr()


@pytest.mark.parametrize("depth", [3_000, 50_000])
def test_yaml_nested_thousands_deep_is_400_naming_the_depth_limit(
    default_controller: tuple[Process, str], depth: int
) -> None:
    process, url = default_controller
    for config in (
        "task:\n  env:\n    X: " + "[" * depth + "]" * depth + "\n",
        # Block style grows with the square of its depth: 600 levels are 360 kB.
        "task:\n" + "".join(" " * (2 * level) + "- \n" for level in range(1, 600)),
    ):
        response = submit(url, {"config": config})
        assert response.status_code == 400, response.text
        assert "nested more than 64 levels deep (config-max-depth)" in response.json()["error"]
    assert "Traceback" not in process.stderr()
