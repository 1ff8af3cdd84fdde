"""How large a configuration the parser accepts: bytes of text, nesting depth, expanded nodes.

A few hundred bytes of nested YAML aliases expand to millions of nodes, and text nested
thousands of levels deep exhausts the recursion of any tree walk; without limits one submission
holds a CPU and the memory for seconds. The controller reads the limits from its file
(``config-max-bytes``, ``config-max-depth``, ``config-max-nodes``); each error names its key.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.cirrus_config.nodes import NOWHERE, CirrusConfigError, Position

DEFAULT_MAX_BYTES = 1024 * 1024
"""1 MiB: twenty times the largest real-world ``.cirrus.yml`` seen (48 KB)."""
DEFAULT_MAX_DEPTH = 64
"""Levels of nested mappings and sequences; real configurations use fewer than 10."""
MAX_DEPTH_CEILING = 200
"""The most ``config-max-depth`` may say: deeper trees would exhaust Python's recursion."""
DEFAULT_MAX_NODES = 100_000
"""Nodes after alias expansion; the largest real configuration has under 2,000."""

MAX_BYTES_KEY = "config-max-bytes"
MAX_DEPTH_KEY = "config-max-depth"
MAX_NODES_KEY = "config-max-nodes"


@dataclass(frozen=True, slots=True)
class ConfigLimits:
    """The limits of one parse; every field must be positive."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_nodes: int = DEFAULT_MAX_NODES

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_depth, self.max_nodes) < 1:
            raise ValueError(f"configuration limits must be positive: {self}")
        if self.max_depth > MAX_DEPTH_CEILING:
            raise ValueError(f"{MAX_DEPTH_KEY} must be at most {MAX_DEPTH_CEILING}")


class ConfigLimitError(CirrusConfigError):
    """A configuration exceeds a limit; ``setting`` is the controller file key that sets it and
    ``too_large`` says whether it is the size (HTTP 413) rather than the shape (HTTP 400)."""

    def __init__(
        self, message: str, setting: str, at: Position = NOWHERE, *, too_large: bool = False
    ) -> None:
        super().__init__(message, at)
        self.setting = setting
        self.too_large = too_large


def check_size(text: str, what: str, limits: ConfigLimits) -> None:
    """Raise ``ConfigLimitError`` if ``text`` (``what``: "config", ...) has too many bytes."""
    # Characters count at most 4 bytes each: a short text needs no encoding to be measured.
    if len(text) * 4 <= limits.max_bytes:
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise ConfigLimitError(
            f"{what} is {size} bytes, more than the limit of {limits.max_bytes} ({MAX_BYTES_KEY})",
            MAX_BYTES_KEY,
            too_large=True,
        )
