"""Both stores keep the security policy a worker reported when it registered."""

from __future__ import annotations

import pytest

from domain.policy import (
    AllowedIsolations,
    ContainerPolicy,
    NonePolicy,
    SecurityPolicy,
    TartPolicy,
    VetuPolicy,
    VolumeRule,
)
from domain.store import ControllerStore, hash_token

pytestmark = pytest.mark.integration

STRICT = SecurityPolicy(
    AllowedIsolations(
        none=NonePolicy(),
        container=ContainerPolicy(allowed_images=("docker.io/library/*",)),
        tart=TartPolicy(
            allowed_images=("ghcr.io/cirruslabs/*",),
            allowed_volumes=(VolumeRule("/cache/*", force_readonly=True),),
            force_softnet=True,
            softnet_allow=("10.0.0.0/8",),
        ),
        vetu=VetuPolicy(allowed_images=("ubuntu*",)),
    )
)


async def test_a_registered_worker_reads_back_with_the_policy_it_reported(
    store: ControllerStore,
) -> None:
    registered = await store.upsert_worker("w1", {}, {}, hash_token("s1"), STRICT)
    assert registered.security_policy == STRICT
    stored = await store.get_worker("w1")
    assert stored is not None
    assert stored.security_policy == STRICT
    assert [w.security_policy for w in await store.list_workers()] == [STRICT]


async def test_a_policy_with_no_isolation_allowed_is_not_mistaken_for_no_policy(
    store: ControllerStore,
) -> None:
    nothing = SecurityPolicy(AllowedIsolations())
    empty_volumes = SecurityPolicy(AllowedIsolations(container=ContainerPolicy(allowed_volumes=())))
    await store.upsert_worker("w1", {}, {}, hash_token("s1"), nothing)
    await store.upsert_worker("w2", {}, {}, hash_token("s2"), empty_volumes)
    policies = [w.security_policy for w in await store.list_workers()]
    assert policies == [nothing, empty_volumes]


async def test_registering_again_replaces_the_policy_and_no_policy_allows_everything(
    store: ControllerStore,
) -> None:
    await store.upsert_worker("w1", {}, {}, hash_token("s1"), STRICT)
    again = await store.upsert_worker("w1", {}, {}, hash_token("s2"))
    assert again.security_policy == SecurityPolicy()
    stored = await store.get_worker("w1")
    assert stored is not None
    assert stored.security_policy == SecurityPolicy()
