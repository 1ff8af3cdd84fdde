"""The entry point: a ``.cirrus.yml`` text (and a ``.cirrus.star``) → a validated ``BuildSpec``.

The pipeline a newcomer can follow: ``yaml_source.load_yaml`` reads the YAML into the tree of
``domain.cirrus_config.nodes``; ``starlark.evaluate_starlark`` runs a ``.cirrus.star``'s ``main``
into more of that tree; ``domain.cirrus_config.parse.parse_config`` does the rest without I/O
(matrices, tasks, expansion, conditions, instances, commands, validation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from adapters.cirrus_config.starlark import StarlarkContext, evaluate_starlark
from adapters.cirrus_config.yaml_source import load_yaml
from domain.build import BuildSpec
from domain.cirrus_config.context import (
    BuildContext,
    InstanceResolver,
    NoSecrets,
    SecretReader,
)
from domain.cirrus_config.instances import MappedInstances
from domain.cirrus_config.limits import ConfigLimits, check_size
from domain.cirrus_config.nodes import Node, Pairs
from domain.cirrus_config.parse import parse_config
from domain.cirrus_config.parsing import SourceFiles


def parse_build(
    text: str,
    environment: Mapping[str, str] | None = None,
    *,
    starlark: str = "",
    instances: InstanceResolver | None = None,
    secrets: SecretReader | None = None,
    changed_files: Sequence[str] | None = None,
    files: SourceFiles | None = None,
    allow_http: bool = False,
    build_id: str = "",
    limits: ConfigLimits | None = None,
) -> BuildSpec:
    """Return the validated build of a configuration, or raise ``CirrusConfigError`` (a
    ``BuildConfigError``) naming the problem, with line and column when the YAML has them.

    ``environment`` is the build's (source variables such as ``CIRRUS_BRANCH``); ``starlark`` the
    text of a ``.cirrus.star`` whose tasks are appended; ``changed_files`` is None when unknown.
    ``limits`` bounds the size of both texts and the depth and node count of every YAML read
    (a ``ConfigLimitError`` past one; default: ``ConfigLimits()``).
    """
    bounds = limits or ConfigLimits()
    check_size(text, "config", bounds)
    check_size(starlark, "starlark", bounds)
    build_environment = dict(environment or {})
    roots: list[Node | None] = [load_yaml(text, limits=bounds)]
    if starlark.strip():
        context = StarlarkContext(
            load_yaml=lambda source: load_yaml(source, limits=bounds) or Pairs(()),
            environment=build_environment,
            allow_http=allow_http,
            changed_files=tuple(changed_files or ()),
        )
        if files is not None:
            context = replace(context, files=files)
        roots.append(evaluate_starlark(starlark, context))
    return parse_config(
        roots,
        BuildContext(
            environment=build_environment,
            instances=instances or MappedInstances(),
            secrets=secrets or NoSecrets(),
            changed_files=None if changed_files is None else tuple(changed_files),
            build_id=build_id,
        ),
    )
