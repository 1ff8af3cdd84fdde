"""The domain imports nothing but pure standard-library modules (import-linter checks the rest)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "domain"
IO_MODULES = {
    "asyncio", "subprocess", "socket", "os", "shutil", "pathlib", "io", "tempfile", "time",
    "threading", "multiprocessing", "signal", "select", "selectors", "ssl", "http", "urllib",
    "sqlite3", "logging", "random", "platform", "sys", "glob", "fnmatch",
}  # fmt: skip


def imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_domain_module_imports_only_pure_standard_library_or_domain() -> None:
    bad: dict[str, set[str]] = {}
    for path in sorted(DOMAIN.rglob("*.py")):
        names = imported_top_level_names(path) - {"domain", "__future__"}
        wrong = {n for n in names if n not in sys.stdlib_module_names or n in IO_MODULES}
        if wrong:
            bad[str(path.relative_to(DOMAIN))] = wrong
    assert bad == {}
