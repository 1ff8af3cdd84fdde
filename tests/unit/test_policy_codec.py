"""``WorkerInfo.securityPolicy``: a worker's policy travels with its registration as JSON."""

from __future__ import annotations

import pytest

from adapters.twirp.codec import decode, encode
from adapters.twirp.errors import ProtocolDecodeError
from adapters.twirp.isolation_mapping import decode_security_policy, encode_security_policy
from domain.policy import (
    AllowedIsolations,
    ContainerPolicy,
    NonePolicy,
    ParallelsPolicy,
    SecurityPolicy,
    TartPolicy,
    VetuPolicy,
    VolumeRule,
)
from domain.protocol import WorkerInfo

EVERY_PART = SecurityPolicy(
    AllowedIsolations(
        none=NonePolicy(),
        container=ContainerPolicy(
            allowed_images=("docker.io/library/*",),
            allowed_volumes=(VolumeRule("/cache/*", force_readonly=True),),
        ),
        tart=TartPolicy(
            allowed_images=("ghcr.io/cirruslabs/*",),
            allowed_volumes=(VolumeRule("/srv"),),
            force_softnet=True,
            softnet_allow=("10.0.0.0/8",),
        ),
        vetu=VetuPolicy(allowed_images=("ubuntu*",)),
        parallels=ParallelsPolicy(),
    )
)


def test_a_policy_is_written_in_proto3_json_with_camel_case_names() -> None:
    assert encode_security_policy(EVERY_PART) == {
        "allowedIsolations": {
            "none": {},
            "container": {
                "allowedImages": ["docker.io/library/*"],
                "allowedVolumes": {"rules": [{"source": "/cache/*", "forceReadonly": True}]},
            },
            "tart": {
                "allowedImages": ["ghcr.io/cirruslabs/*"],
                "allowedVolumes": {"rules": [{"source": "/srv"}]},
                "forceSoftnet": True,
                "softnetAllow": ["10.0.0.0/8"],
            },
            "vetu": {"allowedImages": ["ubuntu*"]},
            "parallels": {},
        }
    }


@pytest.mark.parametrize(
    "policy",
    [
        EVERY_PART,
        SecurityPolicy(),
        SecurityPolicy(AllowedIsolations()),
        SecurityPolicy(AllowedIsolations(container=ContainerPolicy())),
        SecurityPolicy(AllowedIsolations(container=ContainerPolicy(allowed_volumes=()))),
    ],
)
def test_a_policy_reads_back_as_it_was_written(policy: SecurityPolicy) -> None:
    assert decode_security_policy(encode_security_policy(policy)) == policy


def test_a_worker_info_carries_its_policy_and_omits_one_that_allows_everything() -> None:
    info = WorkerInfo(labels={"name": "w1"}, security_policy=EVERY_PART)
    assert decode(encode(info), WorkerInfo).security_policy == EVERY_PART
    assert "securityPolicy" not in encode(WorkerInfo(labels={"name": "w1"}))


def test_a_worker_info_without_a_policy_allows_every_isolation() -> None:
    assert decode({"labels": {"name": "w1"}}, WorkerInfo).security_policy == SecurityPolicy()


def test_snake_case_names_are_read_too() -> None:
    body = {"security_policy": {"allowed_isolations": {"vetu": {"allowed_images": ["x*"]}}}}
    expected = SecurityPolicy(AllowedIsolations(vetu=VetuPolicy(("x*",))))
    assert decode(body, WorkerInfo).security_policy == expected


def test_a_malformed_policy_is_refused_naming_the_field() -> None:
    body = {"securityPolicy": {"allowedIsolations": {"container": {"allowedImages": "x"}}}}
    with pytest.raises(ProtocolDecodeError, match=r"securityPolicy\.allowedIsolations\.container"):
        decode(body, WorkerInfo)
