"""``cirrus controller run --grpc-listen HOST:PORT`` (file: ``grpc: {listen: HOST:PORT}``): the
gRPC services of the original Go worker and agent, next to Twirp, on their own port.

Off unless configured. The server runs on the controller's event loop and answers with the
app's own services (``app.state.grpc``, a ``GrpcBridge``), so both transports share one state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.grpc_server.server import GrpcBindError, GrpcServer
from adapters.wire import cirrus_ci_service_pb2
from app.controller_tokens import ControllerSetupError

GRPC_SECTION = "grpc"
"""Controller file key: the gRPC server's settings, a mapping (``listen: HOST:PORT``)."""
GRPC_LISTEN = "grpc.listen"
"""Where ``read_controller_file`` puts ``grpc: {listen: ...}``."""
GRPC_STOP_GRACE_SECONDS = 5.0
"""How long calls in flight may take to end when the controller stops."""


def grpc_settings(value: object) -> dict[str, str]:
    """Check the ``grpc`` mapping of the controller file; return its settings as file values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ControllerSetupError(GRPC_SECTION, "must be a mapping (e.g. {listen: 0.0.0.0:9090})")
    for key in value:
        if key != "listen":
            raise ControllerSetupError(f"{GRPC_SECTION}.{key}", "unknown key (known: listen)")
    listen = value.get("listen")
    if listen is None:
        return {}
    if not isinstance(listen, str):
        raise ControllerSetupError(GRPC_LISTEN, "must be a string HOST:PORT")
    return {GRPC_LISTEN: listen}


@dataclass(frozen=True, slots=True)
class GrpcListener:
    """A running gRPC server and where it listens."""

    server: GrpcServer
    host: str
    port: int

    @property
    def address(self) -> str:
        """``HOST:PORT`` as a Go worker's ``--rpc-endpoint http://HOST:PORT`` takes it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving (calls in flight get ``GRPC_STOP_GRACE_SECONDS``)."""
        await self.server.stop(GRPC_STOP_GRACE_SECONDS)


async def start_grpc(
    app: Any, address: tuple[str, int] | None, key: str = "--grpc-listen"
) -> GrpcListener | None:
    """Serve the gRPC services of ``app`` (from ``create_app``) on ``address`` (None: off);
    a port that cannot be bound is a ``ControllerSetupError`` naming ``key``."""
    if address is None:
        return None
    host, port = address
    server = GrpcServer(app.state.grpc, cirrus_ci_service_pb2.DESCRIPTOR)
    try:
        bound = await server.start(host, port)
    except GrpcBindError as error:
        await server.stop(0)
        raise ControllerSetupError(key, str(error)) from None
    return GrpcListener(server, host, bound)
