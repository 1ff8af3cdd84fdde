"""The ``.cirrus.yml`` subset the controller accepts (PROTOCOL.md), parsed into domain build specs.

``parse_build(text, environment)`` is the entry point; every refusal is a
``domain.build.BuildConfigError`` naming the task and the key.
"""

from __future__ import annotations

from adapters.cirrus_yaml.tasks import parse_build

__all__ = ["parse_build"]
