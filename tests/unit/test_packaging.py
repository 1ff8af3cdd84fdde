"""The generic top-level names ``domain``, ``adapters`` and ``app`` belong to this checkout only."""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("domain", "adapters", "app")


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_package_resolves_to_this_checkout(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(CHECKOUT / "src" / name)


def test_no_other_installed_distribution_provides_the_generic_names() -> None:
    offenders: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"]
        if dist_name == "cirrus-worker":
            continue
        top = (dist.read_text("top_level.txt") or "").split()
        files = [str(f) for f in (dist.files or [])]
        provided = {n for n in TOP_LEVEL if n in top or any(f.startswith(f"{n}/") for f in files)}
        if provided:
            offenders[dist_name] = sorted(provided)
    assert offenders == {}


def test_this_distribution_is_installed_with_the_cirrus_console_script() -> None:
    dist = metadata.distribution("cirrus-worker")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"cirrus": "app.cli:main"}
