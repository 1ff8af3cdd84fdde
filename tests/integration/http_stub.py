"""A small threaded HTTP server on 127.0.0.1 that a test gives its own request handler.

The handler derives from ``StubHandler``, which keeps test output quiet and sends a complete
answer in one call; ``serve_http`` runs the server for the duration of a ``with`` block.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubHandler(BaseHTTPRequestHandler):
    """A request handler that answers with ``reply`` and logs nothing."""

    def reply(self, status: int, content_type: str, data: bytes) -> None:
        """Send ``data`` as the whole answer, with its status, type and length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # its signature
        """Keep test output quiet."""


@contextmanager
def serve_http(handler_class: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler_class`` on a free port of 127.0.0.1; yield its base URL, then stop."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    # A short poll interval so that shutdown() returns promptly at the end of each test.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
