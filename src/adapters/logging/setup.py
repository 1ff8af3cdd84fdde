"""``configure_logging``: the root logger's handlers, from the ``log`` config section."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.logging.levels import TRACE, parse_level
from adapters.logging.masking import SecretMaskingFilter, add_secrets
from adapters.logging.rotation import SizeRotatingFileHandler

if TYPE_CHECKING:
    from rich.console import Console

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Marks the handlers this module installed, so reconfiguring replaces only those and leaves
# handlers that others attached (test harnesses, embedding programs) alone.
_OURS = "_cirrus_worker_handler"

# Chatty libraries: their per-request INFO lines would drown a worker that polls every few
# seconds; they speak up only when the user asks for debug (httpx) or trace (httpcore).
_LIBRARY_LEVELS: dict[str, int] = {"httpx": logging.DEBUG, "httpcore": TRACE}

# The console of the rich handler installed last (at most one), for terminal_log_console.
_terminal_console: list[Console] = []


def configure_logging(
    level: str,
    file: str | None,
    rotate_size_bytes: int | None,
    max_rotations: int,
    secrets: Sequence[str] = (),
    console_rich: bool = True,
) -> None:
    """Send records at ``level`` or above to ``file`` (only) or to stderr, secrets masked."""
    threshold = parse_level(level)
    add_secrets(secrets)
    handler: logging.Handler
    console: Console | None = None
    if file is not None:
        handler = SizeRotatingFileHandler(file, rotate_size_bytes, max_rotations)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    elif console_rich and sys.stderr.isatty():
        # Imported here: rich costs megabytes that a worker logging to a file never needs.
        from rich.console import Console
        from rich.logging import RichHandler

        console = Console(stderr=True)
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    handler.addFilter(SecretMaskingFilter())
    _terminal_console[:] = [] if console is None else [console]
    setattr(handler, _OURS, True)

    root = logging.getLogger()
    _remove_our_handlers(root)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name, loud_below in _LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(threshold if threshold <= loud_below else logging.WARNING)


def terminal_log_console() -> Console | None:
    """The rich console the log records are printed on, when they go to a terminal.

    A live view on the same terminal must draw on this console, so that records are printed
    above it instead of into it.
    """
    return _terminal_console[0] if _terminal_console else None


def shutdown_logging() -> None:
    """Flush and close the handlers ``configure_logging`` installed."""
    _terminal_console.clear()
    _remove_our_handlers(logging.getLogger())


def _remove_our_handlers(root: logging.Logger) -> None:
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
