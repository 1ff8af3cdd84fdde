"""A fake OTLP collector for tests: OTLP/HTTP and OTLP/gRPC receivers of metrics and traces.

Both bind 127.0.0.1 on a free port, decode requests with ``opentelemetry-proto`` and keep them in
a ``Received`` store that tests poll with a deadline.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class Received:
    """Everything a receiver was sent, safe to read from the test thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.metric_requests: list[ExportMetricsServiceRequest] = []
        self.trace_requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []

    def add_metrics(self, request: ExportMetricsServiceRequest, headers: dict[str, str]) -> None:
        """Store one metrics export."""
        with self._changed:
            self.metric_requests.append(request)
            self.headers.append(headers)
            self._changed.notify_all()

    def add_traces(self, request: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        """Store one traces export."""
        with self._changed:
            self.trace_requests.append(request)
            self.headers.append(headers)
            self._changed.notify_all()

    def metric_names(self) -> set[str]:
        """Names of every metric received so far."""
        with self._lock:
            return {
                metric.name
                for request in self.metric_requests
                for resource in request.resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
            }

    def resource_attributes(self) -> list[dict[str, str]]:
        """String resource attributes of every metrics and traces export."""
        with self._lock:
            resources = [rm.resource for r in self.metric_requests for rm in r.resource_metrics]
            resources += [rs.resource for r in self.trace_requests for rs in r.resource_spans]
        return [
            {kv.key: kv.value.string_value for kv in resource.attributes} for resource in resources
        ]

    def spans(self) -> list[Span]:
        """Every span received so far."""
        with self._lock:
            return [
                span
                for request in self.trace_requests
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
            ]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition()`` holds (re-checked on every export), up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.1))
        return True


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class HttpOtlpReceiver:
    """OTLP/HTTP (protobuf) on ``/v1/metrics`` and ``/v1/traces``."""

    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = _decompress(
                    self.rfile.read(length), self.headers.get("Content-Encoding", "")
                )
                headers = {key.lower(): value for key, value in self.headers.items()}
                reply: bytes
                if self.path == "/v1/metrics":
                    received.add_metrics(ExportMetricsServiceRequest.FromString(body), headers)
                    reply = ExportMetricsServiceResponse().SerializeToString()
                elif self.path == "/v1/traces":
                    received.add_traces(ExportTraceServiceRequest.FromString(body), headers)
                    reply = ExportTraceServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    def Export(self, request: ExportMetricsServiceRequest, context: Any) -> Any:
        self._received.add_metrics(request, dict(context.invocation_metadata()))
        return ExportMetricsServiceResponse()


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> Any:
        self._received.add_traces(request, dict(context.invocation_metadata()))
        return ExportTraceServiceResponse()


class GrpcOtlpReceiver:
    """OTLP/gRPC ``MetricsService`` and ``TraceService``."""

    def __init__(self) -> None:
        self.received = Received()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        # The generated registration helpers carry no annotations.
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _MetricsServicer(self.received), self._server
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceServicer(self.received), self._server
        )
        self.port: int = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        """Endpoint for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (plain text)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in grpc's threads."""
        self._server.start()

    def stop(self) -> None:
        """Stop at once and wait for the server to end."""
        self._server.stop(grace=None).wait(5)
