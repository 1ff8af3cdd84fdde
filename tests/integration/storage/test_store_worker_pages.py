"""Both stores list a pool of workers larger than one read page whole and in name order.

SQLite reads the workers a page at a time (``WORKERS_PAGE_SIZE``), so that one listing of a
big pool does not hold the store's only connection thread while polls wait.
"""

from __future__ import annotations

import pytest

from adapters.storage.sqlite_store import WORKERS_PAGE_SIZE
from domain.store import ControllerStore, hash_token

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("extra", [-1, 0, 1])
async def test_a_pool_around_a_multiple_of_the_page_size_is_listed_whole_in_name_order(
    store: ControllerStore, extra: int
) -> None:
    count = 2 * WORKERS_PAGE_SIZE + extra
    # Registered out of order, so that the listing's order is not the insertion order.
    names = [f"w{(index * 37) % count:04d}" for index in range(count)]
    for name in names:
        await store.upsert_worker(name, {"pool": "idle"}, {}, hash_token(name))
    listed = await store.list_workers()
    assert [worker.name for worker in listed] == sorted(names)
    assert all(worker.labels == {"pool": "idle"} for worker in listed)
