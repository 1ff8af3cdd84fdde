"""The controller config's ``instances:`` section refines the shipped instance mapping."""

from __future__ import annotations

import pytest

from adapters.config.instance_mapping import instance_mapping_from
from domain.cirrus_config.instances import DEFAULT_MAPPING, MappedInstances
from domain.cirrus_config.nodes import Pairs, Scalar
from domain.errors import ConfigError
from domain.isolation import VetuIsolation


def test_no_section_keeps_the_shipped_mapping() -> None:
    assert instance_mapping_from(None) is DEFAULT_MAPPING


def test_given_fields_replace_those_of_the_shipped_rule_and_the_others_stay() -> None:
    mapping = instance_mapping_from({"container": {"labels": {"os": "linux", "pool": "ci"}}})
    rule = mapping.rules["container"]
    assert dict(rule.labels) == {"os": "linux", "pool": "ci"}
    assert (rule.isolation, rule.default_cpu, rule.default_memory) == ("container", 2.0, 4096)
    assert mapping.rules["macos_instance"] == DEFAULT_MAPPING.rules["macos_instance"]


def test_a_new_instance_type_starts_from_an_empty_rule() -> None:
    mapping = instance_mapping_from(
        {"oci_instance": {"isolation": "vetu", "image_field": "image_name"}}
    )
    node = Pairs((("image_name", Scalar("noble", "noble")),))
    requirement = MappedInstances(mapping).resolve("oci_instance", node, {})
    assert requirement.isolation == VetuIsolation(image="noble")
    assert dict(requirement.labels) == {}


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ({"container": {"isolation": "kvm"}}, "instances.container.isolation", "Input should be"),
        ({"container": {"imag": "x"}}, "instances.container.imag", "unknown key"),
        ({"container": {"default_cpu": -1}}, "instances.container.default_cpu", "at least 0"),
        ({"persistent_worker": {}}, "instances.persistent_worker", "has no rule"),
        (["container"], "instances", "expected"),
    ],
)
def test_a_bad_section_is_refused_naming_the_key(section: object, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        instance_mapping_from(section)
    assert refused.value.key == key
    assert message in refused.value.message
