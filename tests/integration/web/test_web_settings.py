"""The controller file's ``web`` key: ``web: {public: true}``, and clear refusals of others."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_controller_cli import cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web: {public: 3}\n", "web.public: must be true or false"),
        ("web: {open: true}\n", "web.open: unknown key (known: public)"),
        ("web: yes\n", "web: must be a mapping"),
    ],
)
def test_a_wrong_web_setting_is_exit_2_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "controller.yml"
    config.write_text(text)
    database = f"sqlite:///{tmp_path / 'c.db'}"
    result = cli(
        tmp_path, "controller", "run", "-f", str(config), "--database", database, "--check"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_public_web_setting_passes_the_check(tmp_path: Path) -> None:
    config = tmp_path / "controller.yml"
    config.write_text("listen: 127.0.0.1:0\nweb:\n  public: true\n")
    database = f"sqlite:///{tmp_path / 'c.db'}"
    result = cli(
        tmp_path, "controller", "run", "-f", str(config), "--database", database, "--check"
    )
    assert result.returncode == 0, result.stderr
