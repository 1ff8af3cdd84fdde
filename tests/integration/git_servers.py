"""Real git servers on 127.0.0.1 for clone tests: ``git daemon`` and ``git http-backend``.

``git_daemon`` serves every bare repository under a directory over ``git://``;
``http_backend`` serves them over HTTP through the ``git http-backend`` CGI program behind a
small threaded HTTP server that requires basic auth with user ``x-access-token`` and a token.
Both stop at the end of their ``with`` block. ``Repo`` builds repositories with a fixed identity.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GIT_CORE = Path("/usr/lib/git-core")
DEADLINE = 10.0
IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
IDENTITY += ["-c", "protocol.file.allow=always", "-c", "init.defaultBranch=main"]


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; return its output (stripped)."""
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Repo:
    """A work tree whose commits are pushed to a bare repository ``<root>/<name>.git``."""

    def __init__(self, root: Path, name: str) -> None:
        self.bare = root / f"{name}.git"
        self.work = root / f"{name}-work"
        self.work.mkdir(parents=True)
        git(root, "init", "--quiet", "--bare", str(self.bare))
        git(self.work, "init", "--quiet")
        git(self.work, "remote", "add", "origin", str(self.bare))

    def commit(self, files: dict[str, str], message: str, branch: str = "main") -> str:
        """Write ``files``, commit them on ``branch``, push; return the commit's SHA."""
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return git(self.work, "rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        """Tag HEAD and push the tag."""
        git(self.work, "tag", name)
        git(self.work, "push", "--quiet", "origin", f"refs/tags/{name}")


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"git daemon exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"git daemon did not listen on port {port}")


@contextmanager
def git_daemon(base_path: Path) -> Iterator[str]:
    """Serve the repositories under ``base_path``; yield the ``git://127.0.0.1:PORT`` base."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(GIT_CORE / "git-daemon"),
            "--export-all",
            f"--base-path={base_path}",
            "--listen=127.0.0.1",
            f"--port={port}",
            "--reuseaddr",
            str(base_path),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        yield f"git://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def _cgi_handler(project_root: Path, token: str) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path, _, query = self.path.partition("?")
            env = {
                "GIT_PROJECT_ROOT": str(project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "x-access-token",
                "REMOTE_ADDR": "127.0.0.1",
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            }
            done = subprocess.run(
                [str(GIT_CORE / "git-http-backend")], input=body, env=env, capture_output=True
            )
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # its signature
            """Keep test output quiet."""

    return Handler


@contextmanager
def http_backend(project_root: Path, token: str) -> Iterator[str]:
    """Serve the repositories under ``project_root`` over HTTP with token auth; yield the base
    URL ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _cgi_handler(project_root, token))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
