"""Issue 14, item 20: a mapping inside a list with a misspelt key names the unknown key."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import WorkerFlags, load_worker_config
from domain.errors import ConfigError

VOLUMES = "security.allowed-isolations.tart.allowed-volumes"


def config_error(text: str, tmp_path: Path) -> ConfigError:
    """The ConfigError that loading the worker file ``text`` raises."""
    path = tmp_path / "worker.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_worker_config(WorkerFlags(file=str(path)), {}, "build-host")
    return caught.value


def test_a_misspelt_key_in_a_list_item_is_named_as_unknown_with_the_missing_one(
    tmp_path: Path,
) -> None:
    error = config_error(
        "security:\n  allowed-isolations:\n    tart:\n      allowed-volumes: [{sauce: /x}]\n",
        tmp_path,
    )
    assert error.key == f"{VOLUMES}[0].sauce"
    assert error.message.startswith("unknown key")
    assert "source" in error.message


def test_the_unknown_key_of_the_second_item_is_named_with_its_index(tmp_path: Path) -> None:
    text = (
        "security:\n  allowed-isolations:\n    tart:\n"
        "      allowed-volumes:\n        - source: /ok\n        - sauce: /x\n"
    )
    assert config_error(text, tmp_path).key == f"{VOLUMES}[1].sauce"


def test_a_missing_key_alone_is_still_reported_as_missing(tmp_path: Path) -> None:
    error = config_error(
        "security:\n  allowed-isolations:\n    tart:\n"
        "      allowed-volumes: [{force-readonly: true}]\n",
        tmp_path,
    )
    assert (error.key, error.message) == (f"{VOLUMES}[0].source", "required key is missing")
