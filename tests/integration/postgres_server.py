"""A private PostgreSQL cluster for the test session, and scratch databases on it.

The cluster lives in a fresh directory under the system temporary directory: ``initdb`` with a
generated superuser password (``scram-sha-256`` over TCP, so URLs carry ``user:pass``), then
``pg_ctl start`` listening on 127.0.0.1 only, on a free port, with its unix socket inside that
directory. PostgreSQL refuses to run as root, so as root every server command runs as the
``postgres`` system user (``runuser``) and the directory is handed to that user.

``shared_server()`` starts the cluster on first use; ``stop_shared_server()`` (called by a
session fixture, and at exit as a fallback) stops it and deletes its files. A missing
PostgreSQL is an error that names ``scripts/setup-postgres.sh``, never a skipped test.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

SUPERUSER = "cirrus_test"
"""The cluster's superuser, also the owner of every scratch database."""

START_ATTEMPTS = 3
"""A free port may be taken between probing and binding; start again on another one."""

COMMAND_TIMEOUT_SECONDS = 120.0


class PostgresMissingError(RuntimeError):
    """The PostgreSQL server programs are not installed."""


def find_program(name: str) -> str:
    """Return the path of a PostgreSQL server program (``initdb``, ``pg_ctl``)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")

    def version(path: str) -> int:
        text = Path(path).parent.parent.name
        return int(text) if text.isdecimal() else 0

    if candidates:
        return max(candidates, key=version)
    raise PostgresMissingError(
        f"PostgreSQL's {name} is not installed; run scripts/setup-postgres.sh (as root) first"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A running private cluster; create scratch databases with ``create_database``."""

    def __init__(self, root: Path, port: int, password: str, run_as: tuple[str, ...]) -> None:
        self.root = root
        self.port = port
        self.password = password
        self._run_as = run_as
        self._stopped = False

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        """The server's log (read it when a start fails)."""
        return self.root / "server.log"

    def url(self, database: str) -> str:
        """Return the ``postgresql://user:pass@127.0.0.1:port/database`` URL of a database."""
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    @classmethod
    def start(cls) -> PostgresServer:
        """Create and start a new cluster; its files are deleted again if starting fails."""
        initdb, pg_ctl = find_program("initdb"), find_program("pg_ctl")
        as_root = os.geteuid() == 0
        run_as = ("runuser", "-u", "postgres", "--") if as_root else ()
        root = Path(tempfile.mkdtemp(prefix="cirrus-pg-"))
        try:
            password = secrets.token_urlsafe(18)
            server = cls(root, 0, password, run_as)
            password_file = root / "password"
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            if as_root:
                account = pwd.getpwnam("postgres")
                for owned in (root, password_file):
                    os.chown(owned, account.pw_uid, account.pw_gid)
            server._run(
                initdb,
                "--pgdata",
                str(server.data_dir),
                "--username",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            password_file.unlink()
            server._start_on_free_port(pg_ctl)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def _start_on_free_port(self, pg_ctl: str) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = _free_port()
            # Durability is worthless for a scratch cluster; these settings make it fast.
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=300"
            )
            try:
                self._run(
                    pg_ctl,
                    "--pgdata",
                    str(self.data_dir),
                    "--log",
                    str(self.log_file),
                    "--options",
                    options,
                    "--wait",
                    "--timeout",
                    "60",
                    "start",
                )
                return
            except RuntimeError:
                if attempt == START_ATTEMPTS:
                    raise

    def _run(self, *command: str) -> None:
        completed = subprocess.run(
            [*self._run_as, *command],
            cwd=self.root,  # the postgres user may not enter the caller's directory
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0:
            log = ""
            with contextlib.suppress(OSError):
                log = self.log_file.read_text(errors="replace")[-4000:]
            raise RuntimeError(
                f"{' '.join(command)} failed with exit code {completed.returncode}:\n"
                f"{completed.stdout}{completed.stderr}{log}"
            )

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=30)

    def create_database(self) -> str:
        """Create an empty database with a fresh name; return its URL."""
        name = f"test_{secrets.token_hex(8)}"
        with self._admin() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of a URL from ``create_database``, ending its connections."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        """Stop the server and delete the cluster's files; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        pg_ctl = find_program("pg_ctl")
        try:
            self._run(pg_ctl, "--pgdata", str(self.data_dir), "--mode", "fast", "--wait", "stop")
        except RuntimeError:
            self._run(pg_ctl, "--pgdata", str(self.data_dir), "--mode", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


_shared: PostgresServer | None = None
_start_error: Exception | None = None
_shared_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """Return the session's cluster, starting it on first use (a failed start is not retried)."""
    global _shared, _start_error
    with _shared_lock:
        if _start_error is not None:
            raise RuntimeError(f"the test PostgreSQL cluster did not start: {_start_error}")
        if _shared is None:
            try:
                _shared = PostgresServer.start()
            except Exception as error:
                _start_error = error
                raise
            # A fallback: the session fixture normally stops it first (stop is idempotent).
            atexit.register(_shared.stop)
        return _shared


def stop_shared_server() -> None:
    """Stop the session's cluster if it was started."""
    global _shared
    with _shared_lock:
        server, _shared = _shared, None
    if server is not None:
        server.stop()
