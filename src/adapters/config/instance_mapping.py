"""The ``instances:`` section of the controller's config file: how instance types of a
``.cirrus.yml`` map to worker requirements, overriding the shipped ``DEFAULT_MAPPING``.

Each key is an instance type (``container``, ``gce_instance``, or a new one); its fields refine the
shipped rule of that type field by field (a new type starts from an empty rule: none isolation,
no labels). ``docs/instance-mapping.md`` documents it::

    instances:
      container:
        labels: {os: linux, arch: amd64, pool: docker}
        resource_fields: {cpu: cpu, memory: memory}
      gce_instance:
        isolation: vetu
        image_field: image_name
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import pydantic

from adapters.config.validation_errors import config_error_from_validation
from domain.cirrus_config.instances import DEFAULT_MAPPING, PERSISTENT_WORKER, InstanceMapping
from domain.errors import ConfigError

SECTION = "instances"


class InstanceRuleModel(pydantic.BaseModel):
    """One instance type's rule as written; unset fields keep the shipped rule's values."""

    model_config = pydantic.ConfigDict(extra="forbid")

    isolation: Literal["none", "container", "tart", "vetu"] | None = None
    labels: dict[str, str] | None = None
    label_fields: dict[str, str] | None = None
    resource_fields: dict[str, str] | None = None
    image_field: str | None = None
    default_cpu: float | None = pydantic.Field(default=None, ge=0)
    default_memory: int | None = pydantic.Field(default=None, ge=0)
    default_user: str | None = None
    default_password: str | None = None


_SectionAdapter = pydantic.TypeAdapter(dict[str, InstanceRuleModel])


def instance_mapping_from(
    section: object, base: InstanceMapping = DEFAULT_MAPPING
) -> InstanceMapping:
    """Return ``base`` refined by an ``instances:`` section (None: ``base`` as is).

    Raises ``ConfigError`` naming the key (``instances.container.isolation``) of a bad value.
    """
    if section is None:
        return base
    try:
        models = _SectionAdapter.validate_python(section)
    except pydantic.ValidationError as error:
        found = config_error_from_validation(error)
        key = f"{SECTION}.{found.key}" if found.key else SECTION
        raise ConfigError(key, found.message) from None
    if PERSISTENT_WORKER in models:
        raise ConfigError(
            f"{SECTION}.{PERSISTENT_WORKER}", "states its requirement itself and has no rule"
        )
    rules = {
        kind: replace(base.rule(kind), **model.model_dump(exclude_none=True))
        for kind, model in models.items()
    }
    return base.with_rules(rules)
