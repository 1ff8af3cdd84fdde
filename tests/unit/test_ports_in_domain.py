"""Ports live in domain/: a ``typing.Protocol`` declared in app/ or adapters/ must be on the
allow-list below, with its reason. import-linter cannot see class bases; this test does."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

ALLOWED = {
    # Private to an adapter: what it needs of a library or of its caller, not a port of the
    # domain (a database driver's rows, the store's settings as the key stores read them).
    "adapters/secrets/key_store.py": {"SettingsStore"},
    "adapters/blobs/signing.py": {"SettingsStore"},
    "adapters/storage/stored_records.py": {"Row"},
    "adapters/storage/forge_tables.py": {"SqlSteps"},
    "adapters/storage/snapshot_chunks.py": {"SnapshotRows"},
}


def _is_protocol(base: ast.expr) -> bool:
    if isinstance(base, ast.Subscript):  # Protocol[T]
        base = base.value
    if isinstance(base, ast.Name):
        return base.id == "Protocol"
    return isinstance(base, ast.Attribute) and base.attr == "Protocol"


def protocols_outside_domain() -> dict[str, set[str]]:
    """``{path under src: {class names}}`` of the Protocols app/ and adapters/ declare."""
    found: dict[str, set[str]] = {}
    for layer in ("app", "adapters"):
        for path in sorted((SRC / layer).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            names = {
                node.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ClassDef) and any(_is_protocol(b) for b in node.bases)
            }
            if names:
                found[path.relative_to(SRC).as_posix()] = names
    return found


def test_no_protocol_is_declared_outside_domain_unless_allowed() -> None:
    unexpected = {
        path: names - ALLOWED.get(path, set())
        for path, names in protocols_outside_domain().items()
        if names - ALLOWED.get(path, set())
    }
    assert unexpected == {}, "declare ports in src/domain/ (or allow them here, with a reason)"


def test_the_allow_list_names_only_protocols_that_still_exist() -> None:
    found = protocols_outside_domain()
    stale = {
        path: names - found.get(path, set())
        for path, names in ALLOWED.items()
        if names - found.get(path, set())
    }
    assert stale == {}, "a port moved to domain/: drop it from ALLOWED"


def test_the_scan_recognises_a_protocol_however_it_is_spelt() -> None:
    source = (
        "class A(Protocol): ...\n"
        "class B(typing.Protocol): ...\n"
        "class C(Protocol[T]): ...\n"
        "class D(Base): ...\n"
    )
    classes = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ClassDef)]
    assert [c.name for c in classes if any(_is_protocol(b) for b in c.bases)] == ["A", "B", "C"]
