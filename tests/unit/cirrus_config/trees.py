"""What the configuration tests share: the tree as plain lists, and the real-world corpus."""

from __future__ import annotations

from pathlib import Path

from domain.cirrus_config.nodes import Node, Scalar, Sequence

# The repository root's sibling ``shared/``, as CI lays the checkout out.
REALWORLD = Path(__file__).resolve().parents[3] / ".." / "shared" / "compat" / "realworld"


def plain(node: Node | None) -> object:
    """The tree as lists: a mapping is its list of (key, value) pairs, a scalar its text."""
    if node is None or isinstance(node, Scalar):
        return None if node is None else node.text
    if isinstance(node, Sequence):
        return [plain(item) for item in node.items]
    return [(key, plain(value)) for key, value in node.items]
