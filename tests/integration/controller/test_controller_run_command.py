"""``cirrus controller run`` as a subprocess: its ``/metrics`` page, and ``--check``.

The controller runs in its own session on 127.0.0.1 (helpers of ``test_controller_cli``); a
raw Twirp JSON client stands in for a worker, so that a task is really handed out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.storage.open_store import redact
from adapters.telemetry.controller_instruments import METRIC_NAMES
from tests.integration.postgres_server import shared_server, stop_shared_server
from tests.integration.test_controller_cli import (
    CIRRUS,
    Process,
    clean_environment,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

REGISTRATION = "registration-token-for-tests"
ADMIN = "admin-token-for-tests"
WORKERS = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/"
BUILD = """\
plain_task:
  script: 'true'
gpu_task:
  persistent_worker:
    labels: {gpu: 'yes'}
  script: nvidia-smi
"""
SCRAPE_DEADLINE = 20.0


@pytest.fixture(scope="module", autouse=True)
def postgres_cluster() -> Iterator[None]:
    """Stop the private PostgreSQL cluster (started by the test that needs it) at the end."""
    yield
    stop_shared_server()


def prometheus_names(name: str) -> str:
    """The Prometheus family name of an OpenTelemetry instrument (dots become underscores)."""
    return name.replace(".", "_")


@pytest.fixture
def controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Process, str]]:
    """A controller with given tokens whose OpenTelemetry export is switched off."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    process, url = start_controller(
        tmp_path,
        tmp_path / "controller.db",
        "--registration-token",
        REGISTRATION,
        "--admin-token",
        ADMIN,
    )
    try:
        yield process, url
    finally:
        process.terminate()


def _hand_out_a_task(http: httpx.Client) -> None:
    submitted = http.post(
        "/api/v1/builds", json={"config": BUILD}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert submitted.status_code == 201, submitted.text
    info = {"labels": {"name": "w1"}, "resourcesTotal": {}}
    registered = http.post(
        WORKERS + "Register", json={"registrationToken": REGISTRATION, "workerInfo": info}
    )
    assert registered.status_code == 200, registered.text
    headers = {
        "registration-token": REGISTRATION,
        "session-token": registered.json()["sessionToken"],
        "worker-name": "w1",
    }
    polled = http.post(
        WORKERS + "Poll", json={"workerInfo": info, "runningTasks": []}, headers=headers
    )
    assert polled.status_code == 200, polled.text
    assert len(polled.json()["tasksToStart"]) == 1


def test_controller_run_serves_every_controller_metric_with_export_switched_off(
    controller: tuple[Process, str],
) -> None:
    process, url = controller
    wanted = {prometheus_names(name) for name in METRIC_NAMES}
    with httpx.Client(base_url=url, timeout=30) as http:
        _hand_out_a_task(http)
        deadline = time.monotonic() + SCRAPE_DEADLINE
        while True:
            response = http.get("/metrics")
            assert response.status_code == 200, response.text
            families = {f.name for f in text_string_to_metric_families(response.text)}
            missing = {name for name in wanted if not any(f.startswith(name) for f in families)}
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert not missing, f"missing {sorted(missing)} in:\n{response.text}"
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'service_name="cirrus-controller"' in response.text
    assert process.terminate() == 0
    assert "Traceback" not in process.stderr()


def _check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CIRRUS), "controller", "run", "--check", *args],
        capture_output=True,
        text=True,
        env=clean_environment(tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_check_of_a_missing_database_leaves_it_uncreated_prints_a_summary_and_exits_0(
    tmp_path: Path,
) -> None:
    database = tmp_path / "nested" / "controller.db"
    result = _check(tmp_path, "--listen", "127.0.0.1:0", "--database", f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr
    # A check only looks (issue 14, item 19): the first real start creates the file.
    assert not database.exists()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("listen: http://127.0.0.1:")
    assert f"database: sqlite:///{database}" in lines[1]
    assert "poll interval: 10 s" in lines
    assert "registration token: generated and printed on the first start" in lines
    assert "admin token: generated and printed on the first start" in lines
    assert "token:" not in result.stdout.replace("token: generated", "")


def _has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            if Path(os.readlink(fd)) == path:
                return True
    return False


def test_a_sigterm_while_the_database_is_still_opening_stops_the_controller_cleanly(
    tmp_path: Path,
) -> None:
    """Signals are routed before the store opens, not only once the server runs."""
    database = tmp_path / "controller.db"
    url = f"sqlite:///{database}"
    assert _check(tmp_path, "--listen", "127.0.0.1:0", "--database", url).returncode == 0
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the controller's migration check waits for this lock
    try:
        process = Process(
            tmp_path,
            "controller",
            ["controller", "run", "--listen", "127.0.0.1:0", "--database", url],
        )
        try:
            wait_for(
                lambda: _has_open(process.process.pid, database) or not process.alive(),
                30,
                "the controller to open its database",
            )
            assert process.alive(), process.stderr()
            process.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.alive(), "the controller should wait for the lock, then stop"
        finally:
            holder.execute("COMMIT")
        try:
            code = process.process.wait(timeout=30)
        finally:
            process.kill_session()
    finally:
        holder.close()
    assert code == 0, process.stderr()
    assert process.stderr().count("SIGTERM: shutting down") == 1
    assert "Traceback" not in process.stderr()


def test_a_second_sigterm_forces_the_exit_without_a_traceback(
    controller: tuple[Process, str],
) -> None:
    """A request whose body never ends holds the graceful stop; the second signal cuts it."""
    process, url = controller
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as held:
        held.sendall(
            b"POST /api/v1/builds HTTP/1.1\r\nHost: controller\r\n"
            + f"Authorization: Bearer {ADMIN}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        with httpx.Client(base_url=url, timeout=30) as http:  # the held request is under way
            assert http.get("/healthz").status_code == 200
        time.sleep(0.2)
        process.process.send_signal(signal.SIGTERM)
        wait_for(
            lambda: "Waiting for connections to close" in process.stderr(),
            30,
            "the graceful stop to wait for the held request",
        )
        assert process.alive()
        process.process.send_signal(signal.SIGTERM)
        try:
            code = process.process.wait(timeout=30)  # not ``terminate``: no third signal
        finally:
            process.kill_session()
    stderr = process.stderr()
    assert code == 0, stderr
    assert stderr.count("SIGTERM: shutting down") == 2
    assert "forced exit: 1 request(s) in progress cut short" in stderr
    assert "Traceback" not in stderr


def test_check_leaves_tokens_for_the_first_real_start_to_print(tmp_path: Path) -> None:
    database = tmp_path / "controller.db"
    checked = _check(tmp_path, "--listen", "127.0.0.1:0", "--database", f"sqlite:///{database}")
    assert checked.returncode == 0, checked.stderr
    process, _url = start_controller(tmp_path, database)
    try:
        assert "registration token (for workers' --token): " in process.stdout()
        assert "admin token (for users' --token or CIRRUS_TOKEN): " in process.stdout()
    finally:
        assert process.terminate() == 0
    again = _check(
        tmp_path, "--listen", "127.0.0.1:0", "--database", f"sqlite:///{database}",
        "--admin-token", "given-admin-token",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "registration token: generated by an earlier start" in again.stdout
    assert "admin token: given" in again.stdout


def test_check_of_a_database_whose_token_was_given_before_needs_it_again(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'controller.db'}"
    process, _url = start_controller(
        tmp_path, tmp_path / "controller.db", "--registration-token", REGISTRATION
    )
    assert process.terminate() == 0
    result = _check(tmp_path, "--listen", "127.0.0.1:0", "--database", database)
    assert result.returncode == 2
    assert "--registration-token: this database's token was given by flag" in result.stderr


def test_check_refuses_an_address_in_use_with_exit_code_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _check(
            tmp_path, "--listen", f"127.0.0.1:{port}", "--database", "sqlite:///:memory:"
        )
    assert result.returncode == 2
    assert result.stderr.startswith("cirrus: --listen: cannot listen on")


def test_check_releases_the_address_it_bound(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _check(tmp_path, "--listen", f"127.0.0.1:{port}", "--database", "sqlite:///:memory:")
    assert result.returncode == 0, result.stderr
    assert f"listen: http://127.0.0.1:{port} (free)" in result.stdout
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_check_reports_a_bad_file_key_with_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "controller.yml"
    config.write_text("listen: 127.0.0.1:0\nbogus: 1\n")
    result = _check(tmp_path, "-f", str(config))
    assert result.returncode == 2
    assert "bogus: unknown key" in result.stderr


def test_check_redacts_the_password_of_an_unreachable_postgresql_and_exits_1(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"postgresql://cirrus:s3cret-pw@127.0.0.1:{closed_port}/ci"
    result = _check(tmp_path, "--listen", "127.0.0.1:0", "--database", url)
    assert result.returncode == 1
    assert result.stderr.startswith("cirrus: --database:")
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_check_opens_a_postgresql_database_and_prints_its_url_without_the_password(
    tmp_path: Path,
) -> None:
    server = shared_server()
    url = server.create_database()
    try:
        result = _check(tmp_path, "--listen", "127.0.0.1:0", "--database", url)
    finally:
        server.drop_database(url)
    assert result.returncode == 0, result.stderr
    assert f"database: {redact(url)} (opened" in result.stdout
    assert ":***@" in result.stdout
    assert server.password not in result.stdout + result.stderr
