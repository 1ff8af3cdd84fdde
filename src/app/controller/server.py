"""The controller's ASGI application: Twirp services, HTTP API and the liveness sweep.

``create_app`` is the one entry point; a runner (``cirrus controller run``, ``cirrus run``, a
test) serves the returned Starlette app with uvicorn and owns the store's lifetime. The app's
lifespan runs the liveness sweep in the background and, given ``metrics``, keeps the gauges
current; ``/metrics`` (Prometheus text, no token, like ``/healthz``) is served when Prometheus
is on. ``app.state.controller`` is the ``ControllerRuntime``: call its ``release_polls()`` when
shutdown begins so that held polls answer at once instead of holding the server for up to a
poll interval, and its ``sweep()`` to declare silent workers lost on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.blobs.config import BlobSettings
from adapters.blobs.filesystem import FilesystemBlobStore
from adapters.cirrus_config.parse_build import parse_build
from adapters.forge.client import forge_client_factory
from adapters.junit_results import parse_junit
from adapters.safe_tar import check_snapshot_archive
from adapters.secrets import SecretCipher
from adapters.storage.memory_repositories import MemoryRepositories
from adapters.storage.memory_user_tokens import MemoryUserTokens
from adapters.twirp.codec import TwirpJsonCodec, encode_isolation
from app.controller.api import ControllerApi
from app.controller.artifact_service import ArtifactService
from app.controller.artifacts_api import ArtifactsApi
from app.controller.auth import ApiAccess, TokenHash, WorkerAuthenticator
from app.controller.blob_calls import BlobCalls
from app.controller.blobs_api import DEFAULT_BLOB_MAX_BYTES, BlobsApi
from app.controller.cache_service import CacheService
from app.controller.forge_settings import ForgeSettings
from app.controller.forge_setup import forge_parts
from app.controller.grpc_bridge import GrpcBridge
from app.controller.long_poll import PollWaiters
from app.controller.metrics import DEFAULT_REFRESH_SECONDS
from app.controller.repositories_api import RepositoriesApi
from app.controller.reruns_api import RerunsApi
from app.controller.retention import BlobRetention
from app.controller.scheduler_service import SchedulerService
from app.controller.snapshots_api import DEFAULT_SNAPSHOT_MAX_BYTES, SnapshotsApi
from app.controller.task_logs import DEFAULT_LOG_QUOTA_BYTES, TaskLogWriter
from app.controller.tokens_api import TokensApi
from app.controller.twirp_services import TwirpServices
from app.web.site import WebInterface
from app.worker.clock import SystemClock
from domain.artifacts import CacheLimits, HasArtifacts
from domain.blobs import BlobStore
from domain.build import BuildSpec
from domain.cirrus_config.context import InstanceResolver
from domain.cirrus_config.limits import ConfigLimits
from domain.cirrus_config.parsing import SourceFiles
from domain.controller_telemetry import ControllerMetrics
from domain.ports import Clock
from domain.repositories import HasRepositories, RepositoryStore
from domain.retention import CommittedArtifacts, RetentionMetrics, RetentionSettings
from domain.store import ControllerStore
from domain.tokens import HasUserTokens

DEFAULT_POLL_INTERVAL_SECONDS = 10
BACKGROUND_STOP_SECONDS = 10.0
"""How long shutdown waits for the cancelled background jobs (sweeps, retention, forges)."""
SWITCH_INTERVAL_SECONDS = 0.001
"""How long a thread holding the GIL keeps it when another one wants it (Python's is 5 ms)."""
FULL_COLLECTION_AFTER = 100
"""Collections of the middle generation between two full ones (Python's default is 10)."""

log = logging.getLogger("cirrus.controller")
"""What ``PollResponse.pollIntervalInSeconds`` says, and how long an idle ``Poll`` is held."""

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ControllerLimits:
    """Operator settings of ``cirrus controller run``: the liveness window (``None``: the
    default of ``default_offline_after``), the per-task log quota and the limits of submitted
    configurations."""

    worker_offline_after_seconds: float | None = None
    log_quota_bytes: int = DEFAULT_LOG_QUOTA_BYTES
    config: ConfigLimits = field(default_factory=ConfigLimits)  # the ``config-max-*`` keys
    snapshot_max_bytes: int = DEFAULT_SNAPSHOT_MAX_BYTES  # ``snapshot-max-bytes``
    blobs: BlobSettings = field(default_factory=BlobSettings)  # ``blobs:``
    retention: RetentionSettings = field(default_factory=RetentionSettings)  # ``retention:``
    caches: CacheLimits = field(default_factory=CacheLimits)  # ``caches:``
    web_public: bool = False  # ``web: {public: true}``: pages readable without login
    forge: ForgeSettings = field(default_factory=ForgeSettings)  # public-url, forge-*, cron-*
    grpc_listen: tuple[str, int] | None = None  # ``--grpc-listen``/``grpc: {listen}`` (None: off)
    grpc_listen_key: str = "--grpc-listen"  # which of the two set it, for error messages


def default_offline_after(poll_interval_seconds: int) -> float:
    """Return how long a worker may stay silent before it is lost: 3 intervals + 30 s."""
    return 3 * poll_interval_seconds + 30.0


@dataclass(frozen=True, slots=True)
class ControllerRuntime:
    """The live parts of one controller app, for its runner and for tests."""

    scheduler: SchedulerService
    waiters: PollWaiters
    sweep_every_seconds: float
    web: WebInterface | None = None

    async def sweep(self) -> list[str]:
        """Declare workers that stopped polling lost now; return their names."""
        return await self.scheduler.sweep()

    def release_polls(self) -> None:
        """Answer every held ``Poll`` now, and later ones at once (shutdown has begun); end
        the web pages' live streams."""
        self.waiters.close()
        if self.web is not None:
            self.web.live.close()


def create_app(
    store: ControllerStore,
    *,
    registration_token: str | TokenHash,
    admin_token: str | TokenHash,
    poll_interval_seconds: int = DEFAULT_POLL_INTERVAL_SECONDS,
    worker_offline_after_seconds: float | None = None,
    clock: Clock | None = None,
    metrics: ControllerMetrics | None = None,
    metrics_refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    secrets: SecretCipher | None = None,
    instances: InstanceResolver | None = None,
    starlark_http: bool = False,
    starlark_files: SourceFiles | None = None,
    config_limits: ConfigLimits | None = None,
    log_quota_bytes: int = DEFAULT_LOG_QUOTA_BYTES,
    snapshot_max_bytes: int = DEFAULT_SNAPSHOT_MAX_BYTES,
    build_filter: Callable[[BuildSpec], BuildSpec] | None = None,
    repositories: RepositoryStore | None = None,
    blobs: BlobStore | None = None,
    blob_max_bytes: int = DEFAULT_BLOB_MAX_BYTES,
    retention: RetentionSettings | None = None,
    cache_limits: CacheLimits | None = None,
    web_public: bool = False,
    forge: ForgeSettings | None = None,
) -> Starlette:
    """Return the controller app: ``/twirp/...``, ``/api/v1/...``, ``/openapi.json``, ``/healthz``.

    ``store`` stays open for the app's life (the caller closes it). Workers register with
    ``registration_token``; the HTTP API wants ``admin_token`` as a Bearer token (either given in
    clear or as its ``TokenHash``, which is all the app keeps). Workers are
    told to poll every ``poll_interval_seconds`` (1..3600) and an idle ``Poll`` is held that
    long; a worker silent for ``worker_offline_after_seconds`` (default: 3 intervals + 30 s) is
    lost. ``clock`` defaults to the system clock. ``metrics`` (default: none) receives the
    scheduling counters and gauges, refreshed after scheduling passes and every
    ``metrics_refresh_seconds``; ``GET /metrics`` is served if its Prometheus text is enabled.
    ``secrets`` encrypts and decrypts ``ENCRYPTED[...]`` values (``cirrus controller run`` passes
    the database's key); without it a key is made for this app's life only. ``instances``
    resolves the instance types of submitted configurations (default: the shipped mapping).
    ``starlark_http`` lets a ``.cirrus.star`` use the ``http`` module; ``starlark_files`` is
    what its ``fs`` module reads (default: nothing). ``config_limits`` bounds the size, depth
    and expanded node count of submitted configurations (default: ``ConfigLimits()``).
    A task keeps at most ``log_quota_bytes``
    of logs, all its commands together (``app.controller.task_logs``). ``build_filter``
    changes every parsed build before it is stored (``cirrus run TASK`` keeps one task and its
    dependencies); a ``BuildConfigError`` it raises refuses the submission with a 400.
    ``repositories`` is the registry of ``/api/v1/repositories`` whose clone tokens tasks get
    (default: the one on ``store``'s database, or one in memory for a store without it).
    A snapshot upload (``POST /api/v1/snapshots``) may be ``snapshot_max_bytes`` long.
    ``blobs`` keeps caches and artifacts (default: none, so no cache or artifact calls); a
    filesystem store's signed ``/blobs/...`` endpoints are mounted, taking up to
    ``blob_max_bytes`` per upload, and the lifespan runs blob ``retention`` (default settings).
    With ``blobs`` and a store that keeps artifacts (``HasArtifacts``), the cache and artifact
    Twirp calls and ``/api/v1/tasks/{id}/artifacts`` are served; ``cache_limits`` bounds each
    cache and each repository's total (least recently used caches are evicted).
    The web interface (``app.web``) is served at ``/``; ``web_public`` shows its builds and
    logs without login, read-only. ``forge`` sets the webhooks', commit statuses' and crons'
    public URL, retries and intervals (``app.controller.forge_setup``).
    """
    if not 1 <= poll_interval_seconds <= 3600:
        raise ValueError(f"poll_interval_seconds must be 1..3600, got {poll_interval_seconds}")
    expected_registration, expected_admin = _hashed(registration_token), _hashed(admin_token)
    offline_after = (
        default_offline_after(poll_interval_seconds)
        if worker_offline_after_seconds is None
        else worker_offline_after_seconds
    )
    if offline_after <= 0:
        raise ValueError(f"worker_offline_after_seconds must be positive, got {offline_after}")
    the_clock: Clock = clock if clock is not None else SystemClock()
    waiters = PollWaiters()
    scheduler = SchedulerService(
        store, the_clock, waiters, offline_after_seconds=offline_after, metrics=metrics
    )
    auth = WorkerAuthenticator(store, expected_registration)
    cipher = secrets if secrets is not None else SecretCipher.generate()
    if repositories is None:
        repositories = (
            store.repositories()
            if isinstance(store, HasRepositories)
            else MemoryRepositories(the_clock)
        )
    artifacts = store.artifacts() if isinstance(store, HasArtifacts) else None
    blob_calls = (
        None
        if blobs is None or artifacts is None
        else BlobCalls(
            CacheService(blobs, artifacts, store, the_clock, cache_limits),
            ArtifactService(blobs, artifacts, the_clock, parse_junit),
        )
    )
    codec = TwirpJsonCodec()  # the wire of both transports
    twirp = TwirpServices(
        store,
        scheduler,
        waiters,
        auth,
        the_clock,
        codec=codec,
        poll_interval_seconds=poll_interval_seconds,
        secrets=cipher,
        logs=TaskLogWriter(store, log_quota_bytes),
        repositories=repositories,
        blob_calls=blob_calls,
    )
    # One role check for the API and the pages: the admin token, and user tokens with roles.
    user_tokens = (
        store.user_tokens() if isinstance(store, HasUserTokens) else MemoryUserTokens(the_clock)
    )
    access = ApiAccess(expected_admin, user_tokens)
    api = ControllerApi(
        store,
        scheduler,
        admin_token=expected_admin,
        secrets=cipher,
        parser=parse_build,
        isolation_json=encode_isolation,
        instances=instances,
        starlark_http=starlark_http,
        starlark_files=starlark_files,
        limits=config_limits,
        build_filter=build_filter,
        access=access,
    )
    sweep_every = max(0.5, min(poll_interval_seconds, offline_after / 3))

    def _retention(store: ControllerStore, blobs: BlobStore) -> BlobRetention:
        return BlobRetention(
            blobs,
            store,
            retention,
            # Without a store of committed artifacts, no orphan is recognised as one.
            committed=artifacts if isinstance(artifacts, CommittedArtifacts) else None,
            metrics=metrics if isinstance(metrics, RetentionMetrics) else None,
            clock=the_clock,
        )

    web = WebInterface(
        store,
        scheduler,
        expected_admin,
        isolation_json=encode_isolation,
        public=web_public,
        access=access,
        artifacts=artifacts,
        blobs=blobs,
    )
    runtime = ControllerRuntime(scheduler, waiters, sweep_every_seconds=sweep_every, web=web)
    forges = forge_parts(
        store,
        api,
        twirp,
        scheduler,
        repositories,
        cipher,
        access,
        the_clock,
        forge or ForgeSettings(),
        forge_client_factory(the_clock),
        web=web,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        background = [asyncio.create_task(scheduler.run_sweeps(runtime.sweep_every_seconds))]
        refresher = scheduler.metrics_refresher
        if refresher is not None:
            refresher.request()  # the first gauges right away
            background.append(asyncio.create_task(refresher.run(metrics_refresh_seconds)))
        if blobs is not None:
            background.append(asyncio.create_task(_retention(store, blobs).run()))
        background.extend(asyncio.create_task(loop()) for loop in forges.loops)
        # What start-up made (modules, classes, the app) lives as long as the process: moved out
        # of the collector's reach, a full collection no longer walks it while polls wait.
        gc.freeze()
        # A full collection walks every object of the held polls (about 140 each: at 1,000
        # polls, 140,000 objects and 50-250 ms with the loop and the store's thread stopped,
        # the pickup p99 outliers of issue 18). Python runs one after 10 younger collections;
        # after FULL_COLLECTION_AFTER they come that much rarer.
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)
        # The store's thread converts rows while holding the GIL; the event loop, wanting it
        # back, waits up to this long each time (default 5 ms: a pickup's many store calls).
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        try:
            yield
        finally:
            waiters.close()
            for task in background:
                task.cancel()
            # Bounded: a background job that does not end when cancelled is named in the log,
            # and the controller stops anyway.
            _done, pending = await asyncio.wait(background, timeout=BACKGROUND_STOP_SECONDS)
            for task in pending:
                log.error("shutdown: background job %s did not stop when cancelled", task)

    routes = [
        Route("/twirp/{rest:path}", twirp.handle, methods=["POST", "GET", "PUT", "DELETE"]),
        *api.routes(),
        *RepositoriesApi(repositories, cipher, expected_admin, access=access).routes(),
        *RerunsApi(store, scheduler, access).routes(),
        *TokensApi(user_tokens, access).routes(),
        *forges.routes,
        *SnapshotsApi(
            store,
            admin_token=expected_admin,
            workers=auth,
            check_archive=check_snapshot_archive,
            max_bytes=snapshot_max_bytes,
            access=access,
        ).routes(),
    ]
    if blobs is not None and artifacts is not None:
        routes.extend(ArtifactsApi(store, artifacts, blobs, access=access).routes())
    if isinstance(blobs, FilesystemBlobStore):
        routes.extend(BlobsApi(blobs, blobs.signer, max_bytes=blob_max_bytes).routes())
    if metrics is not None and metrics.prometheus_enabled:
        routes.append(Route("/metrics", _metrics_endpoint(metrics), methods=["GET"]))
    routes.extend(web.routes())  # last: the API's paths win over the pages
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
    )
    # Starlette answers "/api/v1/workers/" with a 307 to the slash-less path, built from the
    # request's Host header: an open redirect for whoever controls that header. Such a path is a
    # plain 404 instead.
    app.router.redirect_slashes = False
    app.state.controller = runtime
    app.state.blobs = blobs
    app.state.forge = forges  # its cron runner and status reporter, for tests
    app.state.grpc = GrpcBridge(twirp, store, codec)  # what ``--grpc-listen`` serves
    return app


def _hashed(token: str | TokenHash) -> TokenHash:
    """Return the hash to check a token against (a token in clear is hashed at once)."""
    if isinstance(token, TokenHash):
        expected = token
    else:
        expected = TokenHash.of(token) if token else TokenHash("")
    if not expected.sha256:
        raise ValueError("the registration and admin tokens must not be empty")
    return expected


def _metrics_endpoint(metrics: ControllerMetrics) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(_request: Request) -> Response:
        # Collecting runs the gauge callbacks and takes SDK locks: keep it off the event loop.
        text = await asyncio.to_thread(metrics.prometheus_text)
        return Response(text, media_type=PROMETHEUS_CONTENT_TYPE)

    return endpoint
