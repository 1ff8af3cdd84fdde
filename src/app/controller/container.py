"""Composition root of ``cirrus controller run``: settings → outward parts → app → server.

The validated ``ControllerSettings`` come in through a ``providers.Dependency``; nothing reads
files or flags here. The outward parts (store, tokens, secret key, blob store, the URL the
socket listens on) are opened asynchronously by ``app.controller.outward.open_outward`` and
given to the container as ``Dependency`` values, so that a test gives in-memory fakes
instead. Every other provider can be overridden too (``container.clock.override(...)``).
"""

from __future__ import annotations

import dataclasses

from dependency_injector import containers, providers
from starlette.applications import Starlette

from adapters.http_server.serving import ControllerServer, controller_server
from adapters.secrets import SecretCipher
from adapters.telemetry.controller_instruments import (
    ControllerTelemetry,
    setup_controller_telemetry,
)
from app.controller.forge_settings import ForgeSettings
from app.controller.outward import ServedTokens, wake_relay
from app.controller.server import ControllerRuntime, create_app
from app.controller.settings import ControllerSettings
from app.version import version
from app.worker.clock import SystemClock
from domain.blobs import BlobStore
from domain.controller_telemetry import ControllerMetrics
from domain.ports import Clock
from domain.store import ControllerStore
from domain.wakeups import WakeRelay


def build_metrics(clock: Clock) -> ControllerTelemetry:
    """Return the controller's metrics: Prometheus text always, OTLP when configured."""
    return setup_controller_telemetry(version(), prometheus=True, wall_clock=clock.now)


def build_forge(settings: ControllerSettings, listen_url: str) -> ForgeSettings:
    """Return the forge settings whose public URL defaults to the URL the socket listens on."""
    forge = settings.limits.forge
    return forge if forge.public_url else dataclasses.replace(forge, public_url=listen_url)


def build_app(
    settings: ControllerSettings,
    store: ControllerStore,
    tokens: ServedTokens,
    secrets: SecretCipher,
    blobs: BlobStore,
    metrics: ControllerMetrics | None,
    clock: Clock,
    forge: ForgeSettings,
) -> Starlette:
    """Return the controller's Starlette app (Twirp, HTTP API, web pages, gRPC bridge)."""
    limits = settings.limits
    return create_app(
        store,
        registration_token=tokens.registration.expected,
        admin_token=tokens.admin.expected,
        clock=clock,
        metrics=metrics,
        secrets=secrets,
        instances=settings.instances,
        starlark_http=settings.starlark_http,
        worker_offline_after_seconds=limits.worker_offline_after_seconds,
        log_quota_bytes=limits.log_quota_bytes,
        snapshot_max_bytes=limits.snapshot_max_bytes,
        config_limits=limits.config,
        web_public=limits.web_public,
        blobs=blobs,
        blob_max_bytes=settings.blob_max_bytes,
        retention=limits.retention,
        cache_limits=limits.caches,
        forge=forge,
    )


def build_runtime(app: Starlette) -> ControllerRuntime:
    """Return the live parts of ``app`` (scheduler, held polls, web streams)."""
    runtime: ControllerRuntime = app.state.controller
    return runtime


def build_server(app: Starlette, runtime: ControllerRuntime) -> ControllerServer:
    """Return uvicorn serving ``app``; held polls answer as soon as shutdown begins."""
    return controller_server(app, runtime.release_polls)


def build_wake_relay(settings: ControllerSettings, store: ControllerStore) -> WakeRelay:
    """Return how held polls learn of work other controllers queue."""
    return wake_relay(settings.database, store)


class ControllerContainer(containers.DeclarativeContainer):
    """Providers of everything ``controller run`` serves."""

    settings = providers.Dependency(instance_of=ControllerSettings)
    clock = providers.Singleton(SystemClock)
    metrics = providers.Singleton(build_metrics, clock)

    # Outward parts, opened by ``open_outward`` (or in-memory fakes in tests).
    store: providers.Dependency[ControllerStore] = providers.Dependency()
    tokens = providers.Dependency(instance_of=ServedTokens)
    secrets = providers.Dependency(instance_of=SecretCipher)
    blobs: providers.Dependency[BlobStore] = providers.Dependency()
    listen_url = providers.Dependency(instance_of=str)

    forge = providers.Singleton(build_forge, settings, listen_url)
    app = providers.Singleton(
        build_app, settings, store, tokens, secrets, blobs, metrics, clock, forge
    )
    runtime = providers.Singleton(build_runtime, app)
    server = providers.Singleton(build_server, app, runtime)
    wake_relay = providers.Singleton(build_wake_relay, settings, store)
