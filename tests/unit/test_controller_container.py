"""The controller's composition root builds its app on in-memory fakes of its outward parts."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import httpx
from dependency_injector import providers

from adapters.secrets import SecretCipher
from app.controller.auth import TokenHash
from app.controller.config_file import ControllerFile
from app.controller.container import ControllerContainer
from app.controller.long_poll import QueueWatch
from app.controller.outward import ServedTokens
from app.controller.settings import ControllerFlags, controller_settings
from app.controller_tokens import ServedToken
from domain.blobs import BlobInfo, BlobUrl
from domain.snapshots import SnapshotInfo
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.fake_tasks import FakeClock

LISTEN_URL = "http://127.0.0.1:8080"
ADMIN = "admin-token"


class FakeControllerStore(FakeStore):
    """The fake store with the snapshot port (it keeps none) and ``aclose``."""

    async def put_snapshot(self, chunks: AsyncIterable[bytes]) -> SnapshotInfo:
        """Refuse: these tests upload no snapshot."""
        raise NotImplementedError

    async def get_snapshot(self, snapshot_id: str) -> SnapshotInfo | None:
        """Know no snapshot."""
        return None

    async def iter_snapshot(self, snapshot_id: str) -> AsyncIterator[bytes]:
        """Yield nothing."""
        nothing: tuple[bytes, ...] = ()
        for chunk in nothing:
            yield chunk

    async def aclose(self) -> None:
        """Nothing to release."""


class NoBlobs:
    """A blob store holding nothing (the app built here serves no cache or artifact)."""

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, sha256: str | None = None
    ) -> BlobInfo:
        raise NotImplementedError

    async def get(self, key: str) -> AsyncIterator[bytes]:
        nothing: tuple[bytes, ...] = ()
        for chunk in nothing:
            yield chunk

    async def stat(self, key: str) -> BlobInfo | None:
        return None

    async def delete(self, key: str) -> bool:
        return False

    async def list(self, prefix: str) -> AsyncIterator[BlobInfo]:
        nothing: tuple[BlobInfo, ...] = ()
        for info in nothing:
            yield info

    async def upload_url(self, key: str, expires_in: float) -> BlobUrl:
        raise NotImplementedError

    async def download_url(self, key: str, expires_in: float) -> BlobUrl:
        raise NotImplementedError


def container_on_fakes(
    tmp_path: Path, file: dict[str, object] | None = None
) -> ControllerContainer:
    """A container whose store, tokens, key, blobs, clock and metrics are fakes."""
    settings = controller_settings(
        ControllerFlags(),
        ControllerFile.model_validate(file or {}),
        {"XDG_DATA_HOME": str(tmp_path)},
    )
    clock = FakeClock()
    container = ControllerContainer(
        settings=settings,
        store=FakeControllerStore(clock),
        tokens=ServedTokens(
            ServedToken(TokenHash.of("registration-token"), None),
            ServedToken(TokenHash.of(ADMIN), None),
        ),
        secrets=SecretCipher.generate(),
        blobs=NoBlobs(),
        listen_url=LISTEN_URL,
    )
    container.clock.override(providers.Object(clock))
    container.metrics.override(providers.Object(None))
    return container


async def get(
    container: ControllerContainer, path: str, token: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=container.app())
    async with httpx.AsyncClient(transport=transport, base_url=LISTEN_URL) as client:
        return await client.get(path, headers=headers)


async def test_the_app_built_on_fakes_lists_the_workers_of_the_fake_store(tmp_path: Path) -> None:
    container = container_on_fakes(tmp_path)
    store = container.store()
    assert isinstance(store, FakeControllerStore)
    await store.upsert_worker("mac-mini-1", {"os": "darwin"}, {"cpu": 4.0}, "session-hash")

    answer = await get(container, "/api/v1/workers", ADMIN)

    assert answer.status_code == 200
    assert [worker["name"] for worker in answer.json()] == ["mac-mini-1"]


async def test_the_app_refuses_the_api_without_the_served_admin_token(tmp_path: Path) -> None:
    container = container_on_fakes(tmp_path)

    assert (await get(container, "/api/v1/workers", "another-token")).status_code == 401
    assert (await get(container, "/healthz")).status_code == 200


async def test_the_forge_public_url_defaults_to_the_url_the_socket_listens_on(
    tmp_path: Path,
) -> None:
    assert container_on_fakes(tmp_path).forge().public_url == LISTEN_URL
    configured = container_on_fakes(tmp_path, {"public-url": "https://ci.example.com"})
    assert configured.forge().public_url == "https://ci.example.com"


async def test_the_server_answers_held_polls_as_soon_as_shutdown_begins(tmp_path: Path) -> None:
    container = container_on_fakes(tmp_path)
    held = container.runtime().waiters.subscribe("mac-mini-1")
    assert not held.event.is_set()

    container.server().on_shutdown()

    assert held.closed
    assert held.event.is_set()


async def test_held_polls_of_a_sqlite_controller_learn_of_work_by_watching_its_store(
    tmp_path: Path,
) -> None:
    assert isinstance(container_on_fakes(tmp_path).wake_relay(), QueueWatch)
