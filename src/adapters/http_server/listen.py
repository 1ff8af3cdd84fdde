"""Where a server listens: ``HOST:PORT`` parsed, and the listening TCP socket bound.

Errors are ``ConfigError``s naming the flag or file key the address came from, so that the
command prints one line and exits with code 2.
"""

from __future__ import annotations

import contextlib
import resource
import socket
from dataclasses import dataclass

from domain.errors import ConfigError

LISTEN_BACKLOG = 2048
"""Pending connections the listening socket queues (capped by ``net.core.somaxconn``)."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where the controller accepts connections."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The base URL of a controller listening here."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_listen(value: str, key: str = "--listen") -> ListenAddress:
    """Parse ``HOST:PORT`` (``[::1]:PORT`` for IPv6); a ``ConfigError`` names ``key``."""
    host, sep, port_text = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(key, f"{value!r} is not HOST:PORT (a port 0-65535)")
    return ListenAddress(host, int(port_text))


def bind_socket(address: ListenAddress, key: str = "--listen") -> socket.socket:
    """Bind a listening TCP socket (port 0: any free port); a ``ConfigError`` names ``key``."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((address.host, address.port))
        # Workers reconnect together after a restart: 128 pending connections would refuse some.
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise ConfigError(
            key, f"cannot listen on {address.host}:{address.port}: {reason}"
        ) from None
    return sock


def bound_address(address: ListenAddress, sock: socket.socket) -> ListenAddress:
    """Return ``address`` with the port ``sock`` really listens on (port 0 asks for any)."""
    return ListenAddress(address.host, sock.getsockname()[1])


def raise_open_file_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit; return the limit now.

    Every held poll is an open connection: the common soft default of 1024 would refuse
    workers long before the hard limit (raising the hard one needs privileges; not tried).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
