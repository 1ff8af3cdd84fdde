"""``cirrus run``'s instance mapping: the shipped one, with every task placed on this host."""

from __future__ import annotations

import pytest

from adapters.cirrus_config.yaml_source import load_yaml
from app.local_embedded import LocalInstances, host_labels
from domain.cirrus_config.instances import MappedInstances
from domain.cirrus_config.nodes import Node
from domain.isolation import ContainerIsolation, NoneIsolation

ARM_MAC = {"os": "darwin", "arch": "arm64"}


def node(text: str) -> Node:
    """The YAML tree of ``text`` (an instance's body)."""
    tree = load_yaml(text)
    assert tree is not None
    return tree


def test_a_container_on_an_arm_mac_asks_for_the_macs_os_and_arch_and_keeps_its_image() -> None:
    local = LocalInstances(MappedInstances(), ARM_MAC)

    requirement = local.resolve("container", node("image: alpine:${V}\ncpu: 1\n"), {"V": "3"})

    assert dict(requirement.labels) == ARM_MAC
    assert isinstance(requirement.isolation, ContainerIsolation)
    assert requirement.isolation.image == "alpine:3"


def test_persistent_worker_labels_other_than_os_and_arch_are_dropped() -> None:
    local = LocalInstances(MappedInstances(), {"os": "linux", "arch": "amd64"})

    requirement = local.resolve(
        "persistent_worker", node("labels:\n  gpu: big\n  os: darwin\n"), {}
    )

    assert dict(requirement.labels) == {"os": "linux"}


def test_a_cloud_vm_type_runs_on_the_host_without_the_image_family_label() -> None:
    local = LocalInstances(MappedInstances(), ARM_MAC)

    requirement = local.resolve("freebsd_instance", node("image_family: freebsd-14-0\n"), {})

    assert dict(requirement.labels) == {"os": "darwin"}
    assert isinstance(requirement.isolation, NoneIsolation)


def test_local_instances_know_the_same_instance_keys_as_the_shipped_mapping() -> None:
    assert LocalInstances(MappedInstances(), ARM_MAC).kinds() == MappedInstances().kinds()


@pytest.mark.parametrize("key", ["os", "arch"])
def test_the_host_labels_are_non_empty_lowercase_go_names(key: str) -> None:
    value = host_labels()[key]
    assert value
    assert value == value.lower()


def test_a_macos_vm_keeps_its_os_and_arch_so_that_a_linux_host_never_takes_it() -> None:
    local = LocalInstances(MappedInstances(), {"os": "linux", "arch": "amd64"})

    requirement = local.resolve("macos_instance", node("image: ghcr.io/cirruslabs/macos\n"), {})

    assert requirement.labels["os"] == "darwin"
    assert requirement.labels["arch"] == "arm64"
