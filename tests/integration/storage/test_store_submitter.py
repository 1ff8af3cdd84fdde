"""Who submitted a build (schema version 10): stored with the build, read back with it, and a
filter of ``list_builds`` (the web builds list's "mine"), on SQLite and PostgreSQL. A user
token is found by its hash with its name."""

from __future__ import annotations

import pytest

from domain.build import BuildSpec, TaskSpec
from domain.store import ControllerStore, hash_token
from domain.tokens import HasUserTokens, Role

pytestmark = pytest.mark.integration

SPEC = BuildSpec(tasks=(TaskSpec("main"),))


async def test_a_build_keeps_its_submitter_and_lists_filter_by_it(
    store: ControllerStore,
) -> None:
    alice = await store.create_build(SPEC, submitted_by="alice")
    anonymous = await store.create_build(SPEC)
    admin = await store.create_build(SPEC, submitted_by="admin")
    again = await store.get_build(alice.id)
    assert again is not None
    assert (again.submitted_by, anonymous.submitted_by) == ("alice", "")
    mine = await store.list_builds(submitted_by="alice")
    assert [b.id for b in mine] == [alice.id]
    assert [b.id for b in await store.list_builds(submitted_by="admin")] == [admin.id]
    everyone = await store.list_builds()
    assert [b.id for b in everyone] == [admin.id, anonymous.id, alice.id]
    assert await store.list_builds(submitted_by="bob") == []


async def test_a_user_token_is_found_by_its_hash_with_its_name(store: ControllerStore) -> None:
    assert isinstance(store, HasUserTokens)
    tokens = store.user_tokens()
    made = await tokens.add_user_token("ci-bot", Role.OPERATOR, hash_token("secret-9"))
    assert await tokens.token_of_hash(hash_token("secret-9")) == made
    assert await tokens.token_of_hash(hash_token("secret-8")) is None
