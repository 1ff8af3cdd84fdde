"""``cirrus controller run --grpc-listen HOST:PORT`` (file: ``grpc: {listen: HOST:PORT}``): the
gRPC services of the original Go worker and agent, next to Twirp, on their own port.

Off unless configured. The server runs on the controller's event loop and answers with the
app's own services (``app.state.grpc``, a ``GrpcBridge``), so both transports share one state;
``app.controller.outward.start_grpc`` starts it. This module reads the settings.
"""

from __future__ import annotations

from app.controller_tokens import ControllerSetupError

GRPC_SECTION = "grpc"
"""Controller file key: the gRPC server's settings, a mapping (``listen: HOST:PORT``)."""
GRPC_LISTEN = "grpc.listen"
"""Where ``read_controller_file`` puts ``grpc: {listen: ...}``."""


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
