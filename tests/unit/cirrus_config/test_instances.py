"""Instance keys of a task become worker requirements (labels, isolation, resources)."""

from __future__ import annotations

import pytest

from domain.cirrus_config.context import InstanceResolver, WorkerRequirement
from domain.cirrus_config.instance_fields import parse_memory_mib
from domain.cirrus_config.instances import (
    DEFAULT_MAPPING,
    InstanceRule,
    MappedInstances,
)
from domain.cirrus_config.nodes import CirrusConfigError, Node, Pairs, Position, Scalar, Sequence
from domain.isolation import (
    ContainerIsolation,
    ContainerVolume,
    NoneIsolation,
    ParallelsIsolation,
    Platform,
    TartIsolation,
    TartVolume,
    VetuHost,
    VetuIsolation,
)

AT = Position(7, 5)


def text(value: str, line: int = 0) -> Scalar:
    return Scalar(value, value, Position(line, 3) if line else Position())


def number(value: int | float) -> Scalar:
    return Scalar(str(value), value)


NULL = Scalar("", None)


def mapping(*items: tuple[str, Node], at: Position = AT) -> Pairs:
    return Pairs(tuple(items), at)


def resolve(kind: str, node: Node, **environment: str) -> WorkerRequirement:
    resolver: InstanceResolver = MappedInstances()
    return resolver.resolve(kind, node, environment)


def test_a_container_runs_in_a_linux_amd64_container_with_cirrus_default_cpu_and_memory() -> None:
    requirement = resolve("container", mapping(("image", text("node:20"))))
    assert dict(requirement.labels) == {"os": "linux", "arch": "amd64"}
    assert requirement.isolation == ContainerIsolation(image="node:20", cpu=2.0, memory=4096)
    assert dict(requirement.resources) == {}


def test_an_arm_container_asks_for_an_arm64_worker_with_its_own_cpu_and_memory() -> None:
    node = mapping(("image", text("rust:1")), ("cpu", number(4)), ("memory", text("12G")))
    requirement = resolve("arm_container", node)
    assert dict(requirement.labels) == {"os": "linux", "arch": "arm64"}
    assert requirement.isolation == ContainerIsolation(image="rust:1", cpu=4.0, memory=12288)


def test_a_windows_container_asks_for_a_windows_worker_and_a_windows_image() -> None:
    node = mapping(
        ("image", text("mcr.microsoft.com/windows:ltsc2019")), ("os_version", text("2019"))
    )
    requirement = resolve("windows_container", node)
    assert dict(requirement.labels) == {"os": "windows"}
    assert isinstance(requirement.isolation, ContainerIsolation)
    assert requirement.isolation.platform is Platform.WINDOWS


def test_a_macos_instance_runs_in_tart_on_a_darwin_arm64_worker_with_cirrus_defaults() -> None:
    requirement = resolve(
        "macos_instance", mapping(("image", text("ghcr.io/cirruslabs/macos:latest")))
    )
    assert dict(requirement.labels) == {"os": "darwin", "arch": "arm64"}
    assert requirement.isolation == TartIsolation(
        image="ghcr.io/cirruslabs/macos:latest",
        user="admin",
        password="admin",
        cpu=4,
        memory=8192,
    )


def test_a_freebsd_instance_runs_on_the_host_of_a_freebsd_worker_of_that_image_family() -> None:
    node = mapping(
        ("image_family", text("freebsd-14-0")), ("cpu", number(2)), ("greedy", text("true"))
    )
    requirement = resolve("freebsd_instance", node)
    assert dict(requirement.labels) == {"os": "freebsd", "image_family": "freebsd-14-0"}
    assert requirement.isolation == NoneIsolation()


def test_cloud_vm_instances_take_os_and_arch_labels_from_their_platform_and_architecture() -> None:
    node = mapping(
        ("image", text("ami-0123")),
        ("platform", text("Windows")),
        ("architecture", text("ARM64")),
        ("region", text("us-east-1")),
    )
    assert dict(resolve("ec2_instance", node).labels) == {"os": "windows", "arch": "arm64"}
    assert dict(resolve("gce_instance", mapping(("zone", text("us-central1-a")))).labels) == {
        "os": "linux"
    }


def test_values_are_expanded_with_the_task_environment() -> None:
    node = mapping(
        ("image", text("python:${PY}")), ("cpu", text("$CPUS")), ("memory", text("$MEM"))
    )
    requirement = resolve("container", node, PY="3.12", CPUS="3", MEM="6G")
    assert requirement.isolation == ContainerIsolation(image="python:3.12", cpu=3.0, memory=6144)


def test_a_dockerfile_becomes_a_container_built_on_the_worker_with_its_arguments() -> None:
    node = mapping(
        ("dockerfile", text("ci/Dockerfile")),
        ("docker_arguments", mapping(("VERSION", text("$V")))),
    )
    isolation = resolve("container", node, V="2").isolation
    assert isolation == ContainerIsolation(
        image="",
        cpu=2.0,
        memory=4096,
        dockerfile="ci/Dockerfile",
        docker_arguments=(("VERSION", "2"),),
    )


def test_an_image_after_a_dockerfile_cancels_the_dockerfile_and_its_arguments() -> None:
    node = mapping(
        ("dockerfile", text("ci/Dockerfile")),
        ("docker_arguments", mapping(("VERSION", text("2")))),
        ("image", text("alpine")),
    )
    assert resolve("container", node).isolation == ContainerIsolation(
        image="alpine", cpu=2.0, memory=4096
    )


def test_an_empty_instance_is_an_instance_with_defaults() -> None:
    assert resolve("container", NULL).isolation == ContainerIsolation(cpu=2.0, memory=4096)


def test_unknown_instance_fields_are_ignored_as_cirrus_ignored_them() -> None:
    node = mapping(("image", text("alpine")), ("greedy", text("true")), ("kvm", text("true")))
    assert resolve("container", node).isolation == ContainerIsolation(
        image="alpine", cpu=2.0, memory=4096
    )


def test_additional_containers_need_an_image() -> None:
    sidecars = Sequence((mapping(("name", text("db")), at=Position(9, 7)),))
    with pytest.raises(CirrusConfigError) as refused:
        resolve(
            "container", mapping(("image", text("alpine")), ("additional_containers", sidecars))
        )
    assert 'required field "image"' in str(refused.value)
    assert refused.value.at == Position(9, 7)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("memory", "4T", "unsupported memory unit"),
        ("memory", "1.5G", "is not a memory amount"),
        ("cpu", "many", "is not a number"),
    ],
)
def test_a_malformed_value_is_refused_with_its_position(
    field: str, value: str, message: str
) -> None:
    with pytest.raises(CirrusConfigError) as refused:
        resolve("container", mapping((field, text(value, line=12))))
    assert message in str(refused.value)
    assert "line 12, column 3" in str(refused.value)


def test_an_instance_that_is_a_list_is_refused_where_it_stands() -> None:
    with pytest.raises(CirrusConfigError) as refused:
        resolve("container", Sequence((text("alpine"),), AT))
    assert refused.value.at == AT


def test_an_instance_type_the_mapping_does_not_know_is_refused() -> None:
    with pytest.raises(CirrusConfigError, match="unknown instance type 'cloud_9'"):
        resolve("cloud_9", mapping())


@pytest.mark.parametrize(
    ("written", "mib"),
    [
        ("4G", 4096),
        ("4Gi", 4096),
        ("4gb", 4096),
        ("512M", 512),
        ("512Mi", 512),
        ("8", 8192),
        ("2048", 2048),
    ],
)
def test_memory_is_read_in_mib_with_cirrus_units(written: str, mib: int) -> None:
    assert parse_memory_mib(written) == mib


def test_a_persistent_worker_states_its_labels_resources_and_container_isolation() -> None:
    node = mapping(
        ("labels", mapping(("name", text("$WORKER")))),
        ("resources", mapping(("tart-vms", number(1)))),
        (
            "isolation",
            mapping(
                (
                    "container",
                    mapping(
                        ("image", text("debian")),
                        ("volumes", Sequence((text("/cache:/cache:ro"),))),
                    ),
                )
            ),
        ),
    )
    requirement = resolve("persistent_worker", node, WORKER="mac-1")
    assert dict(requirement.labels) == {"name": "mac-1"}
    assert dict(requirement.resources) == {"tart-vms": 1.0}
    assert requirement.isolation == ContainerIsolation(
        image="debian",
        cpu=2.0,
        memory=4096,
        volumes=(ContainerVolume("/cache", "/cache", read_only=True),),
    )


def test_a_persistent_worker_without_isolation_runs_on_the_host() -> None:
    labels = Sequence((mapping(("os", text("linux"))), mapping(("gpu", text("yes")))))
    requirement = resolve("persistent_worker", mapping(("labels", labels)))
    assert dict(requirement.labels) == {"os": "linux", "gpu": "yes"}
    assert requirement.isolation == NoneIsolation()


def test_a_persistent_worker_tart_isolation_keeps_every_field() -> None:
    tart = mapping(
        ("image", text("ghcr.io/cirruslabs/macos-sonoma-base:latest")),
        ("cpu", number(8)),
        ("memory", text("16G")),
        ("softnet", text("true")),
        ("volumes", Sequence((mapping(("name", text("cache")), ("source", text("/c"))),))),
    )
    isolation = resolve(
        "persistent_worker", mapping(("isolation", mapping(("tart", tart))))
    ).isolation
    assert isolation == TartIsolation(
        image="ghcr.io/cirruslabs/macos-sonoma-base:latest",
        cpu=8,
        memory=16384,
        softnet=True,
        volumes=(TartVolume(name="cache", source="/c"),),
    )


def test_a_persistent_worker_vetu_and_parallels_isolations_are_read() -> None:
    vetu = mapping(("image", text("ubuntu")), ("networking", mapping(("host", NULL))))
    read = resolve("persistent_worker", mapping(("isolation", mapping(("vetu", vetu))))).isolation
    assert read == VetuIsolation(image="ubuntu", networking=VetuHost())
    parallels = mapping(("image", text("win11")), ("platform", text("windows")))
    node = mapping(("isolation", mapping(("parallels", parallels))))
    assert resolve("persistent_worker", node).isolation == ParallelsIsolation(
        image="win11", platform=Platform.WINDOWS
    )


def test_a_persistent_worker_container_built_from_a_dockerfile_needs_cirrus_arch() -> None:
    container = mapping(("dockerfile", text("Dockerfile", line=4)))
    node = mapping(("isolation", mapping(("container", container))))
    with pytest.raises(CirrusConfigError, match="CIRRUS_ARCH") as refused:
        resolve("persistent_worker", node)
    assert refused.value.at == Position(4, 3)
    built = resolve("persistent_worker", node, CIRRUS_ARCH="arm64").isolation
    assert isinstance(built, ContainerIsolation)
    assert built.dockerfile == "Dockerfile"


def test_a_configured_rule_replaces_the_default_one_and_may_ask_for_resources() -> None:
    rule = InstanceRule(
        "container",
        {"os": "linux", "pool": "big"},
        resource_fields={"cpu": "cpu", "memory": "memory"},
        default_cpu=2.0,
        default_memory=4096,
    )
    resolver = MappedInstances(DEFAULT_MAPPING.with_rules({"container": rule}))
    requirement = resolver.resolve("container", mapping(("cpu", number(6))), {})
    assert dict(requirement.labels) == {"os": "linux", "pool": "big"}
    assert dict(requirement.resources) == {"cpu": 6.0, "memory": 4096.0}


def test_a_configured_rule_may_send_a_cloud_vm_type_to_vetu_with_its_image() -> None:
    rule = InstanceRule("vetu", {"os": "linux"}, image_field="image_name", default_user="ci")
    resolver = MappedInstances(DEFAULT_MAPPING.with_rules({"gce_instance": rule}))
    requirement = resolver.resolve("gce_instance", mapping(("image_name", text("jammy"))), {})
    assert requirement.isolation == VetuIsolation(image="jammy", user="ci")


def test_the_resolver_knows_every_shipped_instance_key_and_persistent_worker() -> None:
    kinds = MappedInstances().kinds()
    expected = {
        "container", "arm_container", "windows_container", "macos_instance", "freebsd_instance",
        "compute_engine_instance", "gce_instance", "ec2_instance", "eks_container",
        "gke_container", "azure_container_instance", "persistent_worker",
    }  # fmt: skip
    assert expected <= kinds


def test_a_rule_with_an_unknown_isolation_is_refused() -> None:
    with pytest.raises(ValueError, match="isolation must be one of"):
        InstanceRule("firecracker")
