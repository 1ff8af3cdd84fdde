"""The worker's security policy: allowed isolations, images, volumes and Softnet (spec §5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import CirrusError, PolicyViolation
from domain.isolation import (
    ContainerIsolation,
    ContainerVolume,
    Isolation,
    NoneIsolation,
    ParallelsIsolation,
    TartIsolation,
    TartVolume,
    UnsetIsolation,
    VetuIsolation,
)
from domain.paths import clean_volume_source
from domain.policy import (
    AllowedIsolations,
    ContainerPolicy,
    NonePolicy,
    ParallelsPolicy,
    SecurityPolicy,
    TartPolicy,
    VetuPolicy,
    VolumeRule,
    allowed_isolation_kinds,
    check_isolation,
    images_allowed,
    isolation_policy,
    tart_softnet,
    volume_allowed,
)

PREFIX = "invalid isolation parameters: "
SUFFIX = " is not allowed by this Persistent Worker's security settings"
EVERY_ISOLATION: list[Isolation] = [
    NoneIsolation(),
    ContainerIsolation(image="debian:latest"),
    TartIsolation(image="ghcr.io/cirruslabs/macos-sonoma-base:latest"),
    VetuIsolation(image="ghcr.io/cirruslabs/ubuntu:latest"),
    ParallelsIsolation(image="big-sur"),
]
CACHE_RULES = (VolumeRule(source="/tmp"), VolumeRule(source="/var/cache/*"))
READONLY_RULES = (
    VolumeRule(source="/read-write"),
    VolumeRule(source="/read-only", force_readonly=True),
)


def refusal(policy: SecurityPolicy, isolation: Isolation) -> str:
    """Return the message with which the policy refuses the isolation."""
    with pytest.raises(PolicyViolation) as refused:
        check_isolation(policy, isolation)
    return str(refused.value)


def only(
    *,
    none: NonePolicy | None = None,
    container: ContainerPolicy | None = None,
    tart: TartPolicy | None = None,
    vetu: VetuPolicy | None = None,
    parallels: ParallelsPolicy | None = None,
) -> SecurityPolicy:
    """Return a policy whose ``allowed-isolations`` lists exactly the given sections."""
    sections = AllowedIsolations(
        none=none, container=container, tart=tart, vetu=vetu, parallels=parallels
    )
    return SecurityPolicy(allowed_isolations=sections)


def tart_with_volumes(
    rules: tuple[VolumeRule, ...], *volumes: TartVolume
) -> tuple[SecurityPolicy, TartIsolation]:
    """Return a Tart-only policy with these volume rules and a Tart task with these volumes."""
    policy = only(tart=TartPolicy(allowed_volumes=rules))
    return policy, TartIsolation(image="img", volumes=volumes)


# --- §5.1 allowed isolations -------------------------------------------------------------------


@pytest.mark.parametrize("isolation", EVERY_ISOLATION, ids=lambda i: i.kind)
def test_an_absent_security_section_allows_every_isolation_type(isolation: Isolation) -> None:
    check_isolation(SecurityPolicy(), isolation)


@pytest.mark.parametrize("isolation", EVERY_ISOLATION, ids=lambda i: i.kind)
def test_an_empty_allowed_isolations_section_refuses_every_type_with_the_exact_text(
    isolation: Isolation,
) -> None:
    expected = f'{PREFIX}"{isolation.kind}" isolation{SUFFIX}'
    assert refusal(SecurityPolicy(allowed_isolations=AllowedIsolations()), isolation) == expected


def test_an_empty_allowed_isolations_section_refuses_none_with_the_exact_text() -> None:
    assert refusal(SecurityPolicy(allowed_isolations=AllowedIsolations()), NoneIsolation()) == (
        'invalid isolation parameters: "none" isolation is not allowed by this Persistent '
        "Worker's security settings"
    )


def test_only_the_listed_isolation_types_are_allowed() -> None:
    policy = only(none=NonePolicy(), container=ContainerPolicy())
    check_isolation(policy, NoneIsolation())
    check_isolation(policy, ContainerIsolation(image="debian"))
    assert refusal(policy, TartIsolation(image="img")) == f'{PREFIX}"tart" isolation{SUFFIX}'
    assert refusal(policy, VetuIsolation(image="img")) == f'{PREFIX}"vetu" isolation{SUFFIX}'
    assert refusal(policy, ParallelsIsolation()) == f'{PREFIX}"parallels" isolation{SUFFIX}'


def test_an_empty_tart_section_allows_tart_but_an_absent_one_does_not() -> None:
    check_isolation(only(tart=TartPolicy()), TartIsolation(image="any/image"))
    assert refusal(only(vetu=VetuPolicy()), TartIsolation(image="any/image")) == (
        f'{PREFIX}"tart" isolation{SUFFIX}'
    )


def test_the_type_check_comes_before_the_image_check() -> None:
    policy = only(vetu=VetuPolicy(allowed_images=("ghcr.io/*",)))
    assert refusal(policy, TartIsolation(image="evil/image")) == f'{PREFIX}"tart" isolation{SUFFIX}'


def test_an_isolation_without_a_type_is_unsupported_whatever_the_policy() -> None:
    expected = "invalid isolation parameters: unsupported isolation type <nil>"
    assert refusal(SecurityPolicy(), UnsetIsolation()) == expected
    assert refusal(SecurityPolicy(allowed_isolations=AllowedIsolations()), UnsetIsolation()) == (
        expected
    )


def test_a_policy_violation_is_a_cirrus_error() -> None:
    assert issubclass(PolicyViolation, CirrusError)


def test_allowed_isolation_kinds_lists_every_type_when_the_section_is_absent() -> None:
    assert allowed_isolation_kinds(SecurityPolicy()) == (
        "none",
        "container",
        "tart",
        "vetu",
        "parallels",
    )


def test_allowed_isolation_kinds_lists_the_present_sections_in_the_fixed_order() -> None:
    policy = only(parallels=ParallelsPolicy(), tart=TartPolicy(), none=NonePolicy())
    assert allowed_isolation_kinds(policy) == ("none", "tart", "parallels")
    assert allowed_isolation_kinds(SecurityPolicy(allowed_isolations=AllowedIsolations())) == ()


def test_an_absent_section_gives_every_type_its_empty_policy() -> None:
    assert isolation_policy(SecurityPolicy(), "tart") == TartPolicy()
    assert isolation_policy(SecurityPolicy(), "container") == ContainerPolicy()
    assert isolation_policy(SecurityPolicy(), "unset") is None
    assert isolation_policy(only(none=NonePolicy()), "tart") is None


# --- §5.2 images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("ghcr.io/cirruslabs/macos-ventura-base:latest", True),
        ("example.com/cirruslabs/macos-ventura-base:latest", False),
        ("example.org/ghcr.io/cirruslabs/whatnot", False),
    ],
)
def test_tart_images_follow_the_config_fixture(image: str, allowed: bool) -> None:
    policy = only(tart=TartPolicy(allowed_images=("ghcr.io/cirruslabs/*",)))
    if allowed:
        check_isolation(policy, TartIsolation(image=image))
    else:
        assert refusal(policy, TartIsolation(image=image)) == (
            f'{PREFIX}"tart" VM image "{image}"{SUFFIX}'
        )


def test_a_refused_vetu_image_names_vetu_and_the_image() -> None:
    policy = only(vetu=VetuPolicy(allowed_images=("ghcr.io/cirruslabs/*",)))
    check_isolation(policy, VetuIsolation(image="ghcr.io/cirruslabs/ubuntu:latest"))
    assert refusal(policy, VetuIsolation(image="docker.io/evil")) == (
        'invalid isolation parameters: "vetu" VM image "docker.io/evil" is not allowed by this '
        "Persistent Worker's security settings"
    )


def test_an_image_is_allowed_if_any_pattern_matches() -> None:
    policy = only(tart=TartPolicy(allowed_images=("a/*", "b/*")))
    check_isolation(policy, TartIsolation(image="b/x"))


def test_an_image_is_quoted_as_go_quotes_it() -> None:
    policy = only(tart=TartPolicy(allowed_images=("a/*",)))
    assert refusal(policy, TartIsolation(image='x"\n')) == (
        f'{PREFIX}"tart" VM image "x\\"\\n"{SUFFIX}'
    )


def test_a_refused_container_image_names_container_and_the_image() -> None:
    policy = only(container=ContainerPolicy(allowed_images=("debian:*",)))
    check_isolation(policy, ContainerIsolation(image="debian:12"))
    assert refusal(policy, ContainerIsolation(image="alpine:3")) == (
        'invalid isolation parameters: "container" image "alpine:3" is not allowed by this '
        "Persistent Worker's security settings"
    )


@given(st.text(max_size=20))
def test_an_empty_image_list_allows_any_image(image: str) -> None:
    assert images_allowed((), image)
    check_isolation(only(tart=TartPolicy()), TartIsolation(image=image))
    check_isolation(only(vetu=VetuPolicy()), VetuIsolation(image=image))
    check_isolation(only(container=ContainerPolicy()), ContainerIsolation(image=image))


# --- §5.3 Softnet ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "forced", "allow", "expected"),
    [
        (False, False, (), (False, ())),
        (True, False, (), (True, ())),
        (False, True, (), (True, ())),
        (False, False, ("10.0.0.0/16",), (False, ())),
        (True, False, ("10.0.0.0/16",), (True, ("10.0.0.0/16",))),
        (False, True, ("10.0.0.0/16", "192.168.0.0/24"), (True, ("10.0.0.0/16", "192.168.0.0/24"))),
    ],
)
def test_softnet_is_on_when_asked_or_forced_and_then_gets_the_allow_list(
    asked: bool, forced: bool, allow: tuple[str, ...], expected: tuple[bool, tuple[str, ...]]
) -> None:
    policy = only(tart=TartPolicy(force_softnet=forced, softnet_allow=allow))
    assert tart_softnet(policy, TartIsolation(image="img", softnet=asked)) == expected


def test_softnet_under_the_default_policy_follows_the_task() -> None:
    assert tart_softnet(SecurityPolicy(), TartIsolation(softnet=True)) == (True, ())
    assert tart_softnet(SecurityPolicy(), TartIsolation(softnet=False)) == (False, ())


# --- §5.4 volumes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("/tmp", True),
        ("/tmp/subdir", False),
        ("/tmp/../../etc/passwd", False),
        ("/var/cache/", True),
        ("/var/cache/subdir", True),
        ("/var/cache", False),
        ("/var/cache/../../etc/passwd", False),
        ("/tmp/", False),
        ("//tmp", True),
        ("/tmp/.", True),
        ("/var/cache/a/../b", True),
    ],
)
def test_every_row_of_the_tart_volume_table_holds(source: str, allowed: bool) -> None:
    assert volume_allowed(CACHE_RULES, source, read_only=False) is allowed
    policy, isolation = tart_with_volumes(CACHE_RULES, TartVolume(source=source, target="/x"))
    if allowed:
        check_isolation(policy, isolation)
    else:
        assert refusal(policy, isolation) == f'{PREFIX}volume "{source}"{SUFFIX}'


@pytest.mark.parametrize(
    ("source", "read_only", "allowed"),
    [
        ("/read-write", False, True),
        ("/read-write", True, True),
        ("/read-only", False, False),
        ("/read-only", True, True),
    ],
)
def test_force_readonly_allows_only_read_only_volumes(
    source: str, read_only: bool, allowed: bool
) -> None:
    assert volume_allowed(READONLY_RULES, source, read_only=read_only) is allowed


def test_the_first_matching_rule_decides_even_if_a_later_one_would_allow() -> None:
    rules = (VolumeRule(source="/data/*", force_readonly=True), VolumeRule(source="/data/rw"))
    assert not volume_allowed(rules, "/data/rw", read_only=False)
    assert volume_allowed(tuple(reversed(rules)), "/data/rw", read_only=False)


def test_an_empty_tart_policy_refuses_every_volume() -> None:
    volume = TartVolume(name="cache", source="/tmp", target="/cache")
    isolation = TartIsolation(image="img", volumes=(volume,))
    assert refusal(only(tart=TartPolicy()), isolation) == f'{PREFIX}volume "cache"{SUFFIX}'


def test_the_default_policy_refuses_tart_volumes() -> None:
    isolation = TartIsolation(image="img", volumes=(TartVolume(source="/tmp", target="/t"),))
    assert refusal(SecurityPolicy(), isolation) == f'{PREFIX}volume "/tmp"{SUFFIX}'


def test_a_tart_task_without_volumes_passes_an_empty_tart_policy() -> None:
    check_isolation(SecurityPolicy(), TartIsolation(image="img"))


def test_a_refused_volume_is_named_by_its_source_exactly_as_given() -> None:
    policy, isolation = tart_with_volumes(CACHE_RULES, TartVolume(source="//etc/./passwd"))
    assert refusal(policy, isolation) == f'{PREFIX}volume "//etc/./passwd"{SUFFIX}'


def test_only_the_source_of_a_volume_is_checked() -> None:
    volume = TartVolume(name="n", source="/tmp", target="/etc/../root", cleanup=True)
    policy, isolation = tart_with_volumes(CACHE_RULES, volume)
    check_isolation(policy, isolation)


def test_the_first_refused_volume_is_the_one_reported() -> None:
    policy, isolation = tart_with_volumes(
        CACHE_RULES,
        TartVolume(name="ok", source="/tmp"),
        TartVolume(name="first", source="/etc"),
        TartVolume(name="second", source="/root"),
    )
    assert refusal(policy, isolation) == f'{PREFIX}volume "first"{SUFFIX}'


def test_the_image_is_checked_before_the_volumes() -> None:
    policy = only(tart=TartPolicy(allowed_images=("good/*",)))
    isolation = TartIsolation(image="bad/x", volumes=(TartVolume(source="/etc"),))
    assert refusal(policy, isolation) == f'{PREFIX}"tart" VM image "bad/x"{SUFFIX}'


def test_an_allow_all_rule_admits_every_absolute_volume() -> None:
    policy, isolation = tart_with_volumes(
        (VolumeRule(source="/*"),), TartVolume(source="/"), TartVolume(source="/a/../../b")
    )
    check_isolation(policy, isolation)


def test_the_default_policy_allows_container_volumes() -> None:
    isolation = ContainerIsolation(image="debian", volumes=(ContainerVolume(source="/etc"),))
    check_isolation(SecurityPolicy(), isolation)
    check_isolation(only(container=ContainerPolicy()), isolation)


def test_container_volume_rules_work_as_tart_ones_and_name_the_source() -> None:
    policy = only(container=ContainerPolicy(allowed_volumes=READONLY_RULES))
    allowed = ContainerVolume(source="/read-only", target="/ro", read_only=True)
    check_isolation(policy, ContainerIsolation(image="debian", volumes=(allowed,)))
    refused = ContainerVolume(source="/read-only/", target="/ro")
    assert refusal(policy, ContainerIsolation(image="debian", volumes=(allowed, refused))) == (
        f'{PREFIX}volume "/read-only/"{SUFFIX}'
    )


def test_an_empty_container_volume_list_refuses_every_volume() -> None:
    policy = only(container=ContainerPolicy(allowed_volumes=()))
    check_isolation(policy, ContainerIsolation(image="debian"))
    isolation = ContainerIsolation(image="debian", volumes=(ContainerVolume(source="/tmp"),))
    assert refusal(policy, isolation) == f'{PREFIX}volume "/tmp"{SUFFIX}'


def test_the_container_image_is_checked_before_its_volumes() -> None:
    policy = only(container=ContainerPolicy(allowed_images=("debian",), allowed_volumes=()))
    isolation = ContainerIsolation(image="alpine", volumes=(ContainerVolume(source="/tmp"),))
    assert refusal(policy, isolation) == f'{PREFIX}"container" image "alpine"{SUFFIX}'


@given(st.text(alphabet="/.ab", max_size=16), st.booleans())
def test_a_volume_is_allowed_exactly_when_its_cleaned_source_lies_under_the_prefix(
    source: str, read_only: bool
) -> None:
    # However many ``..`` the source holds, the pattern sees the lexically cleaned path.
    allowed = volume_allowed((VolumeRule(source="/a/*"),), source, read_only)
    assert allowed is clean_volume_source(source).startswith("/a/")
