"""The ports of configuration parsing: what a ``.cirrus.star`` reads of the build's source, and
the parser that turns the configuration texts into a ``BuildSpec``.

``adapters.cirrus_config.parse_build.parse_build`` is the parser (YAML and Starlark need
libraries, so it lives in adapters); the controller's composition root hands it to the use cases
that create builds. Source files come from a snapshot (``app.controller.snapshot_files``) or a
local directory (``adapters.cirrus_config.starlark.LocalSourceFiles``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from domain.build import BuildSpec
from domain.cirrus_config.context import InstanceResolver, SecretReader
from domain.cirrus_config.limits import ConfigLimits


class SourceFiles(Protocol):
    """The build's source as ``fs`` and ``load()`` see it; paths are relative to its root."""

    def read(self, path: str) -> bytes | None:
        """Return the bytes of file ``path``, or None when there is no such file."""
        ...

    def list(self, directory: str) -> list[str] | None:
        """Return the names in ``directory``, or None when there is no such directory."""
        ...


class ConfigParser(Protocol):
    """Turns a ``.cirrus.yml`` (and a ``.cirrus.star``) into a validated build.

    Raises ``ConfigLimitError`` past ``limits``, ``BuildConfigError`` (a ``CirrusConfigError``)
    naming a problem, and ``RecursionError`` for a value nested too deeply.
    """

    def __call__(
        self,
        text: str,
        environment: Mapping[str, str] | None = None,
        *,
        starlark: str = "",
        instances: InstanceResolver | None = None,
        secrets: SecretReader | None = None,
        changed_files: Sequence[str] | None = None,
        files: SourceFiles | None = None,
        allow_http: bool = False,
        limits: ConfigLimits | None = None,
    ) -> BuildSpec:
        """Return the build the configuration describes."""
        ...
