"""``cirrus controller run`` guards what it keeps and what it logs (issue 14, items 10, 11, 13).

The database only its owner reads, the tokens kept as hashes (old databases migrated),
``rotate-tokens``, worker names with control characters refused, and no redirect built from a
request's ``Host`` header. Controllers run as real processes on 127.0.0.1, in ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_controller_cli import (
    CIRRUS,
    START_TIMEOUT,
    Process,
    clean_environment,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

WORKERS = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/"
REGISTRATION = "registration-token-for-security-tests"
ADMIN = "admin-token-for-security-tests"
ORIGIN_KEYS = ("generated-registration-token", "generated-admin-token")


def mode(path: Path) -> int:
    """The permission bits of a file or directory."""
    return stat.S_IMODE(path.stat().st_mode)


def database_bytes(database: Path) -> bytes:
    """The database file and its companions (``-wal``, ``-shm``), as they are on disk."""
    files = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    return b"".join(file.read_bytes() for file in files if file.exists())


def listening_url(process: Process) -> str:
    """Wait until a controller started without ``start_controller`` listens; its URL."""

    def url() -> str | None:
        assert process.alive(), process.stderr()
        lines = process.stdout().splitlines()
        return next((line.split()[-1] for line in lines if "listening on" in line), None)

    try:
        return str(wait_for(url, START_TIMEOUT, "the controller to listen"))
    except BaseException:
        process.kill_session()
        raise


def settings(database: Path) -> dict[str, str]:
    """The controller's stored settings, read with sqlite3 while no controller runs."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return dict(connection.execute("SELECT key, value FROM settings").fetchall())


def cirrus(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one short ``cirrus`` command to its end."""
    return subprocess.run(
        [str(CIRRUS), *args],
        env=clean_environment(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def register(
    url: str, name: str, token: str, labels: dict[str, str] | None = None
) -> httpx.Response:
    """Register a worker as a worker would, with raw Twirp JSON."""
    info = {"labels": {"name": name, **(labels or {})}, "resourcesTotal": {}}
    return httpx.post(
        url + WORKERS + "Register", json={"registrationToken": token, "workerInfo": info}
    )


def list_workers(url: str, admin: str) -> int:
    """The status code of the workers list with ``admin`` as the Bearer token."""
    headers = {"Authorization": f"Bearer {admin}"}
    return httpx.get(url + "/api/v1/workers", headers=headers).status_code


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """A controller with given tokens."""
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


def test_the_default_database_is_private_and_holds_no_token_in_clear(tmp_path: Path) -> None:
    process = Process(tmp_path, "controller", ["controller", "run", "--listen", "127.0.0.1:0"])
    try:
        url = listening_url(process)
        registration = printed_token(process.stdout(), "registration token")
        admin = printed_token(process.stdout(), "admin token")
        assert list_workers(url, admin) == 200
        data = tmp_path / "data" / "cirrus"
        database = data / "controller.db"
        assert (mode(data), mode(database)) == (0o700, 0o600)
        wal = database.with_name("controller.db-wal")
        assert not wal.exists() or mode(wal) == 0o600
        on_disk = database_bytes(database)
    finally:
        assert process.terminate() == 0
    on_disk += database_bytes(database)
    assert registration.encode() not in on_disk
    assert admin.encode() not in on_disk
    assert hashlib.sha256(admin.encode()).hexdigest().encode() in on_disk


def test_a_database_given_by_path_is_created_0600_in_a_new_0700_directory(tmp_path: Path) -> None:
    database = tmp_path / "state" / "controller.db"
    process, _url = start_controller(tmp_path, database)
    try:
        assert (mode(database.parent), mode(database)) == (0o700, 0o600)
    finally:
        assert process.terminate() == 0


def test_an_existing_database_readable_by_others_is_restricted_to_its_owner(
    tmp_path: Path,
) -> None:
    database = tmp_path / "open.db"
    first, _url = start_controller(tmp_path, database)
    assert first.terminate() == 0
    database.chmod(0o644)
    second, _url = start_controller(tmp_path, database)
    try:
        assert mode(database) == 0o600
        assert "was readable by other users" in second.stderr()
    finally:
        assert second.terminate() == 0


def test_a_database_with_tokens_in_clear_still_authenticates_and_keeps_only_hashes(
    tmp_path: Path,
) -> None:
    database = tmp_path / "old.db"
    first, _url = start_controller(tmp_path, database)
    assert first.terminate() == 0
    # What earlier versions stored: the generated token in clear, its hash next to it.
    old = {"registration": secrets.token_urlsafe(24), "admin": secrets.token_urlsafe(24)}
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        for role, token in old.items():
            connection.execute(
                "UPDATE settings SET value = ? WHERE key = ?", (token, f"generated-{role}-token")
            )
            connection.execute(
                "UPDATE settings SET value = ? WHERE key = ?",
                (hashlib.sha256(token.encode()).hexdigest(), f"{role}-token-sha256"),
            )
    assert {settings(database)[key] for key in ORIGIN_KEYS} == set(old.values())

    second, url = start_controller(tmp_path, database)
    try:
        assert "token" not in second.stdout()
        assert list_workers(url, old["admin"]) == 200
        assert register(url, "old-worker", old["registration"]).status_code == 200
    finally:
        assert second.terminate() == 0
    stored = settings(database)
    assert not set(old.values()) & set(stored.values())
    assert old["admin"].encode() not in database_bytes(database)


def test_rotate_tokens_prints_new_tokens_that_replace_the_old_ones(tmp_path: Path) -> None:
    database = tmp_path / "rotated.db"
    first, url = start_controller(tmp_path, database)
    old_registration = printed_token(first.stdout(), "registration token")
    old_admin = printed_token(first.stdout(), "admin token")
    assert first.terminate() == 0

    rotated = cirrus(tmp_path, "controller", "rotate-tokens", "--database", f"sqlite:///{database}")
    assert rotated.returncode == 0, rotated.stderr
    registration = printed_token(rotated.stdout, "registration token")
    admin = printed_token(rotated.stdout, "admin token")
    assert {registration, admin}.isdisjoint({old_registration, old_admin})
    assert "restart the controller" in rotated.stderr
    assert admin.encode() not in database_bytes(database)

    second, url = start_controller(tmp_path, database)
    try:
        assert "token" not in second.stdout()
        assert (list_workers(url, old_admin), list_workers(url, admin)) == (401, 200)
        assert register(url, "w", old_registration).status_code == 401
        assert register(url, "w", registration).status_code == 200
    finally:
        assert second.terminate() == 0


def test_rotate_tokens_admin_rotates_the_admin_token_only(tmp_path: Path) -> None:
    database = tmp_path / "admin-only.db"
    first, _url = start_controller(tmp_path, database)
    registration = printed_token(first.stdout(), "registration token")
    assert first.terminate() == 0

    rotated = cirrus(
        tmp_path, "controller", "rotate-tokens", "--admin", "--database", f"sqlite:///{database}"
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "registration token" not in rotated.stdout
    admin = printed_token(rotated.stdout, "admin token")

    second, url = start_controller(tmp_path, database)
    try:
        assert list_workers(url, admin) == 200
        assert register(url, "w", registration).status_code == 200
    finally:
        assert second.terminate() == 0


def test_rotate_tokens_refuses_a_token_set_in_the_controller_file(tmp_path: Path) -> None:
    database = tmp_path / "filed.db"
    first, _url = start_controller(tmp_path, database)
    assert first.terminate() == 0
    config = tmp_path / "controller.yml"
    config.write_text(f"database: sqlite:///{database}\nadmin-token: from-the-file\n")

    refused = cirrus(tmp_path, "controller", "rotate-tokens", "-f", str(config))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.startswith("cirrus: admin-token: is set in the controller file")


def test_rotate_tokens_refuses_a_database_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    refused = cirrus(tmp_path, "controller", "rotate-tokens", "--database", f"sqlite:///{missing}")
    assert refused.returncode == 2
    assert "no database at" in refused.stderr
    assert not missing.exists()


def test_a_worker_name_with_a_newline_is_refused_and_forges_no_log_line(
    controller: tuple[Process, str],
) -> None:
    process, url = controller
    forged = "w1\nINFO cirrus.controller: worker admin registered"
    refused = register(url, forged, REGISTRATION)
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_argument"
    assert "holds the control character '\\n'" in refused.json()["msg"]
    assert register(url, "w2", REGISTRATION).status_code == 200
    wait_for(lambda: "worker w2 registered" in process.stderr(), 10, "the registration log")
    assert "worker admin registered" not in process.stderr()


def test_a_label_with_an_escape_sequence_is_refused(controller: tuple[Process, str]) -> None:
    _process, url = controller
    refused = register(url, "w3", REGISTRATION, {"os": "linux\x1b[2J"})
    assert refused.status_code == 400
    assert "label 'os'" in refused.json()["msg"]


def test_a_path_with_a_trailing_slash_is_a_404_and_never_a_redirect_to_the_host_header(
    controller: tuple[Process, str],
) -> None:
    _process, url = controller
    answer = httpx.get(
        url + "/api/v1/workers/",
        headers={"Host": "attacker.example", "Authorization": f"Bearer {ADMIN}"},
    )
    assert answer.status_code == 404
    assert "location" not in answer.headers
