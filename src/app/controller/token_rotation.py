"""``cirrus controller rotate-tokens``: which tokens may be rotated, and rotating them.

A token set in the controller file cannot be rotated (the file would win at the next start);
an in-memory or missing SQLite database keeps no tokens to rotate.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from adapters.storage.open_store import MEMORY, DatabaseKind
from app.controller.config_file import ControllerFile
from app.controller.outward import open_store
from app.controller.settings import check_database_url
from app.controller_tokens import ADMIN, REGISTRATION, ControllerSetupError, rotate_token

TOKEN_KEYS = ("registration-token", "admin-token")
"""The tokens' names: the flags without ``--``, the controller file's keys."""


def check_rotation(url: str, which: tuple[str, ...], file: ControllerFile) -> None:
    """Refuse to rotate a token the file sets, or tokens of a database that keeps none."""
    for slot in (REGISTRATION, ADMIN):
        key = slot.flag.removeprefix("--")
        if key in which and file.has(key):
            raise ControllerSetupError(
                key,
                "is set in the controller file; a rotated token would not be served: "
                "change it there",
            )
    checked = check_database_url(url)
    if checked.kind is DatabaseKind.SQLITE:
        if checked.target == MEMORY:
            raise ControllerSetupError("--database", "an in-memory database keeps no tokens")
        if not Path(checked.target).is_file():
            raise ControllerSetupError(
                "--database", f"no database at {checked.target} (start the controller once)"
            )


async def rotate(url: str, which: tuple[str, ...]) -> None:
    """Replace the tokens named in ``which`` by new ones; print each once."""
    store = await open_store(url, os.environ)
    try:
        for slot in (REGISTRATION, ADMIN):
            if slot.flag.removeprefix("--") in which:
                click.echo(f"{slot.label}: {await rotate_token(store, slot)}")
    finally:
        await store.aclose()
