"""A short human summary of an effective worker configuration, for ``cirrus worker validate``.

The YAML that ``validate`` prints is complete but long; these few lines answer what an operator
checks first: where the worker registers, what it lets tasks run, and what it keeps warm. They
go to stderr so that stdout stays machine-readable YAML.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.isolation import TartIsolation, VetuIsolation
from domain.policy import (
    ContainerPolicy,
    TartPolicy,
    VetuPolicy,
    VolumeRule,
    allowed_isolation_kinds,
    isolation_policy,
)
from domain.protocol import StandbyParameters
from domain.worker_config_view import WorkerConfigView


def summary_lines(config: WorkerConfigView) -> list[str]:
    """Return the summary: worker and controllers, isolations with their limits, standby."""
    lines = [f"worker {config.name}: " + ", ".join(u.endpoint for u in config.upstreams)]
    if config.labels:
        lines.append(f"labels: {_pairs(config.labels)}")
    if config.resources:
        lines.append(f"resources: {_pairs(config.resources)}")
    kinds = allowed_isolation_kinds(config.security_policy())
    if not kinds:
        lines.append("isolations: none allowed (every task is refused)")
    for kind in kinds:
        lines.append(f"isolation {kind}: {_limits(config, kind)}")
    lines.append(f"standby: {_standby(config.standby())}")
    return lines


def _pairs(values: Mapping[str, object]) -> str:
    return ", ".join(
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in sorted(values.items())
    )


def _images(patterns: tuple[str, ...]) -> str:
    return "any image" if not patterns else "images " + ", ".join(patterns)


def _volumes(rules: tuple[VolumeRule, ...] | None) -> str:
    if rules is None:
        return "any volume"
    if not rules:
        return "no volumes"
    described = (
        f"{rule.source} (read-only)" if rule.force_readonly else rule.source for rule in rules
    )
    return "volumes " + ", ".join(described)


def _limits(config: WorkerConfigView, kind: str) -> str:
    policy = isolation_policy(config.security_policy(), kind)
    if isinstance(policy, ContainerPolicy):
        return f"{_images(policy.allowed_images)}; {_volumes(policy.allowed_volumes)}"
    if isinstance(policy, TartPolicy):
        text = f"{_images(policy.allowed_images)}; {_volumes(policy.allowed_volumes)}"
        if policy.force_softnet:
            text += "; Softnet forced"
        if policy.softnet_allow:
            text += "; Softnet may reach " + ", ".join(policy.softnet_allow)
        return text
    if isinstance(policy, VetuPolicy):
        return _images(policy.allowed_images)
    if kind == "none":
        return "tasks run on this host as the worker's user"
    return "allowed"


def _standby(parameters: StandbyParameters | None) -> str:
    if parameters is None:
        return "off"
    isolation = parameters.isolation
    if not isinstance(isolation, TartIsolation | VetuIsolation):
        return isolation.kind  # the loader builds only Tart and Vetu standbys
    text = f"{isolation.kind} {isolation.image}"
    if isolation.cpu:
        text += f", {isolation.cpu} CPUs"
    if isolation.memory:
        text += f", {isolation.memory} MiB"
    if parameters.resources:
        text += f", needs {_pairs(parameters.resources)}"
    return text
