"""Instances → worker requirements: where a task of a ``.cirrus.yml`` runs on self-hosted workers.

Hosted Cirrus CI started a container or a VM in a cloud for each instance type (``container``,
``macos_instance``, ``gce_instance``...). A self-hosted controller has only persistent workers,
so each instance type becomes what a worker must offer: labels, an isolation and resources. An
``InstanceRule`` says how, per instance key; ``DEFAULT_MAPPING`` holds the shipped rules and the
controller's config file may override them (``docs/instance-mapping.md``).

``persistent_worker`` is not a rule: it states labels, resources and isolation itself
(``domain.cirrus_config.worker_isolation``).

A Dockerfile as the CI environment (``dockerfile:``, ``docker_arguments:`` in a container) stays
what the wire's ``Isolation.Container`` says it is: ``dockerfile`` set (the image is built from
it on the worker) and ``image`` empty unless ``image:`` came after it. A worker whose policy
restricts images accepts such a task only if its patterns match the empty image (``*``).

``additional_containers`` of a rule with container isolation go into the isolation
(``domain.cirrus_config.additional_containers``): the worker runs them beside the task's
container. Other instance types check them and drop them, as they have no container to share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.cirrus_config.additional_containers import additional_containers
from domain.cirrus_config.context import WorkerRequirement
from domain.cirrus_config.instance_fields import Fields, read_fields
from domain.cirrus_config.nodes import CirrusConfigError, Node
from domain.cirrus_config.worker_isolation import image_and_dockerfile, persistent_worker
from domain.isolation import (
    AdditionalContainer,
    ContainerIsolation,
    Isolation,
    NoneIsolation,
    Platform,
    TartIsolation,
    VetuIsolation,
    freeze_str_map,
)
from domain.protocol import frozen_str_map

ISOLATION_CHOICES = ("none", "container", "tart", "vetu")
"""The isolations an instance rule may choose."""

PERSISTENT_WORKER = "persistent_worker"

# Labels whose values are lowercased, to compare with a worker's GOOS/GOARCH-like labels.
_LOWERCASED_LABELS = frozenset({"os", "arch"})
_PLATFORMS = {"windows": Platform.WINDOWS, "darwin": Platform.DARWIN}


@dataclass(frozen=True, slots=True)
class InstanceRule:
    """How one instance key becomes a ``WorkerRequirement``.

    ``labels`` are fixed labels; ``label_fields`` copy instance fields into labels (and win over
    a fixed label of the same name: ``platform: windows`` gives ``os=windows``);
    ``resource_fields`` copy fields into resources (``cpu`` and ``memory`` with their defaults,
    memory in MiB). ``cpu``/``memory``/``user``/``password`` defaults fill the isolation.
    """

    isolation: str = "none"
    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    label_fields: Mapping[str, str] = field(default_factory=frozen_str_map)
    resource_fields: Mapping[str, str] = field(default_factory=frozen_str_map)
    image_field: str = "image"
    default_cpu: float = 0.0
    default_memory: int = 0
    default_user: str = ""
    default_password: str = ""

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATION_CHOICES:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATION_CHOICES)}")
        object.__setattr__(self, "labels", frozen_str_map(self.labels))
        object.__setattr__(self, "label_fields", frozen_str_map(self.label_fields))
        object.__setattr__(self, "resource_fields", frozen_str_map(self.resource_fields))

    __hash__ = None  # type: ignore[assignment]  # the read-only maps are not hashable


@dataclass(frozen=True, slots=True)
class InstanceMapping:
    """The rule of every instance key a controller knows (``persistent_worker`` aside)."""

    rules: Mapping[str, InstanceRule]

    def __post_init__(self) -> None:
        if PERSISTENT_WORKER in self.rules:
            raise ValueError(f"{PERSISTENT_WORKER} states its requirement itself; it has no rule")
        object.__setattr__(self, "rules", dict(self.rules))

    __hash__ = None  # type: ignore[assignment]  # the rules map is not hashable

    def with_rules(self, rules: Mapping[str, InstanceRule]) -> InstanceMapping:
        """Return this mapping with ``rules`` added or replacing the rules of their keys."""
        return InstanceMapping({**self.rules, **rules})

    def rule(self, kind: str) -> InstanceRule:
        """Return the rule of ``kind`` or an empty one (none isolation, no labels) to refine."""
        return self.rules.get(kind, InstanceRule())


def _container(arch: str = "", os: str = "linux", **more: str) -> InstanceRule:
    labels = {"os": os, **({"arch": arch} if arch else {})}
    return InstanceRule(
        "container", labels, more, default_cpu=2.0, default_memory=4096
    )  # Cirrus's container defaults: 2 CPUs, 4 GiB


def _vm(os: str = "linux", **label_fields: str) -> InstanceRule:
    return InstanceRule("none", {"os": os}, label_fields)


_MACOS = InstanceRule(
    "tart",
    {"os": "darwin", "arch": "arm64"},
    default_cpu=4,
    default_memory=8192,
    default_user="admin",
    default_password="admin",
)

DEFAULT_MAPPING = InstanceMapping(
    {
        "container": _container("amd64"),
        "arm_container": _container("arm64"),
        "windows_container": _container(os="windows"),
        "eks_container": _container(architecture="arch"),
        "gke_container": _container(architecture="arch"),
        "aks_container": _container(architecture="arch"),
        "azure_container_instance": _container(os_type="os"),
        "macos_instance": _MACOS,
        "osx_instance": _MACOS,
        "anka_instance": _vm("darwin"),
        "freebsd_instance": _vm("freebsd", image_family="image_family"),
        "compute_engine_instance": _vm(
            platform="os", architecture="arch", image_family="image_family"
        ),
        "gce_instance": _vm(platform="os", architecture="arch", image_family="image_family"),
        "ec2_instance": _vm(platform="os", architecture="arch"),
        "docker_builder": _vm(platform="os", architecture="arch"),
    }
)
"""The shipped mapping (``docs/instance-mapping.md`` has it as a table)."""


class MappedInstances:
    """The controller's ``InstanceResolver``: instance keys resolved by an ``InstanceMapping``."""

    def __init__(self, mapping: InstanceMapping = DEFAULT_MAPPING) -> None:
        self.mapping = mapping

    def kinds(self) -> frozenset[str]:
        """Return every instance key this resolver knows, ``persistent_worker`` included."""
        return frozenset({*self.mapping.rules, PERSISTENT_WORKER})

    def resolve(self, kind: str, node: Node, environment: Mapping[str, str]) -> WorkerRequirement:
        """Return the requirement of instance ``kind`` described by ``node``."""
        if kind == PERSISTENT_WORKER:
            return persistent_worker(node, environment)
        rule = self.mapping.rules.get(kind)
        if rule is None:
            raise CirrusConfigError(f"unknown instance type {kind!r}", node.at)
        fields = read_fields(node, kind, environment)
        sidecars = additional_containers(fields)  # checked for every instance type
        labels = dict(rule.labels)
        for field_name, label in rule.label_fields.items():
            value = fields.text(field_name)
            if value:
                labels[label] = value.lower() if label in _LOWERCASED_LABELS else value
        cpu = fields.float_value("cpu", rule.default_cpu)
        memory = fields.memory_value("memory", rule.default_memory)
        return WorkerRequirement(
            labels=labels,
            isolation=_isolation(rule, fields, cpu, memory, labels.get("os", ""), sidecars),
            resources=_resources(rule, fields, cpu, memory),
        )


def _resources(rule: InstanceRule, fields: Fields, cpu: float, memory: int) -> dict[str, float]:
    resources: dict[str, float] = {}
    for field_name, resource in rule.resource_fields.items():
        if field_name == "cpu":
            amount = cpu
        elif field_name == "memory":
            amount = float(memory)
        elif fields.node(field_name) is None:
            continue
        else:
            amount = fields.float_value(field_name)
        if amount:
            resources[resource] = amount
    return resources


def _isolation(
    rule: InstanceRule,
    fields: Fields,
    cpu: float,
    memory: int,
    os: str,
    sidecars: tuple[AdditionalContainer, ...],
) -> Isolation:
    if rule.isolation == "container":
        image, dockerfile = image_and_dockerfile(fields, rule.image_field)
        return ContainerIsolation(
            image=image,
            cpu=cpu,
            memory=memory,
            dockerfile=dockerfile,
            # Cirrus drops the build arguments when no Dockerfile is built.
            docker_arguments=freeze_str_map(
                fields.string_map("docker_arguments") if dockerfile else {}
            ),
            platform=_PLATFORMS.get(os, Platform.LINUX),
            additional_containers=sidecars,
        )
    image = fields.text(rule.image_field)
    user = fields.text("user", rule.default_user)
    password = fields.text("password", rule.default_password)
    whole_cpu = fields.int_value("cpu", int(rule.default_cpu))
    if rule.isolation == "tart":
        return TartIsolation(
            image=image, user=user, password=password, cpu=whole_cpu, memory=memory
        )
    if rule.isolation == "vetu":
        return VetuIsolation(
            image=image, user=user, password=password, cpu=whole_cpu, memory=memory
        )
    return NoneIsolation()
