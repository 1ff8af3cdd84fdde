"""What parsing a configuration needs besides its text: the build's environment and source,
and two ports, one for instances and one for secrets.

``parse`` (the pipeline's last step) takes a ``BuildContext``. The controller builds it from the
submission (environment, changed files, repository) and its adapters (the instance mapping of
its config file, the secret cipher of its store).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from domain.cirrus_config.nodes import Node
from domain.errors import CirrusError
from domain.isolation import Isolation, NoneIsolation
from domain.protocol import frozen_float_map, frozen_str_map


@dataclass(frozen=True, slots=True, eq=True)
class WorkerRequirement:
    """Where a task may run: the labels a worker must have, the isolation, the resources."""

    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    isolation: Isolation = field(default_factory=NoneIsolation)
    resources: Mapping[str, float] = field(default_factory=frozen_float_map)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_str_map(self.labels))
        object.__setattr__(self, "resources", frozen_float_map(self.resources))

    __hash__ = None  # type: ignore[assignment]  # the read-only maps are not hashable


class InstanceResolver(Protocol):
    """Turns an instance key of a task (``container``, ``macos_instance``, ...) into a
    ``WorkerRequirement``; implemented by ``domain.cirrus_config.instances``."""

    def kinds(self) -> frozenset[str]:
        """Return the instance keys it knows (every key that selects where a task runs)."""
        ...

    def resolve(self, kind: str, node: Node, environment: Mapping[str, str]) -> WorkerRequirement:
        """Return the requirement of instance ``kind`` described by ``node`` (values expanded
        with ``environment``), or raise ``CirrusConfigError`` naming the bad field."""
        ...


class SecretError(CirrusError):
    """An ``ENCRYPTED[...]`` value cannot be decrypted by this controller (or for this repo)."""


class ForeignSecretError(SecretError):
    """An ``ENCRYPTED[...]`` value made by another system (hosted Cirrus CI): no controller of
    this project can decrypt it, and it does not claim to be one of ours."""


class SecretReader(Protocol):
    """Decrypts ``ENCRYPTED[...]`` values; implemented by the controller's secret cipher."""

    def decrypt(self, value: str, repository: str) -> str:
        """Return the plain text of ``value`` (the whole ``ENCRYPTED[...]`` text), or raise
        ``SecretError`` when it is not a value this controller encrypted for ``repository``
        (``ForeignSecretError`` when it is not in this project's format at all)."""
        ...


class NoSecrets:
    """A ``SecretReader`` that can decrypt nothing (a controller without a key, unit tests)."""

    def decrypt(self, value: str, repository: str) -> str:
        """Refuse every value."""
        raise SecretError("this controller cannot decrypt it")


@dataclass(frozen=True, slots=True)
class BuildContext:
    """The build a configuration is parsed for.

    ``environment`` is the build's environment as submitted, with the source variables
    (``CIRRUS_BRANCH``, ``CIRRUS_REPO_FULL_NAME``, ``CIRRUS_PR``, ...). ``changed_files`` is
    None when the list is unknown (``changesInclude`` then behaves as Cirrus did).
    """

    environment: Mapping[str, str]
    instances: InstanceResolver
    secrets: SecretReader = field(default_factory=NoSecrets)
    changed_files: tuple[str, ...] | None = None
    build_id: str = ""

    @property
    def repository(self) -> str:
        """Return ``owner/name`` of the build's repository, or ``""``."""
        return self.environment.get("CIRRUS_REPO_FULL_NAME", "")
