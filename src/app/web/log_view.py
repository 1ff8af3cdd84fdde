"""Log pieces for the task page: a byte window of a (maybe huge) log, rendered from ANSI to HTML.

A page shows one window of ``LOG_PAGE_BYTES`` per command, the tail by default, so that a
200 MB log costs the page 64 KiB. Colours come from rich's ANSI decoder and HTML export, which
escapes the text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from markupsafe import Markup
from rich.console import Console
from rich.terminal_theme import TerminalTheme
from rich.text import Text

LOG_PAGE_BYTES = 64 * 1024
"""Bytes of a log one page (or one live update) shows at most."""

LIGHT_THEME = TerminalTheme(
    (246, 248, 250),
    (31, 35, 40),
    # The 16 ANSI colours darkened to a contrast of at least 4.5:1 on the log's background
    # (WCAG AA, which the accessibility check enforces): black, red, green, yellow, blue,
    # magenta, cyan, white, then their bright forms.
    [
        (31, 35, 40),
        (179, 38, 30),
        (26, 127, 55),
        (125, 88, 0),
        (5, 80, 174),
        (130, 80, 223),
        (10, 107, 117),
        (87, 96, 106),
    ],
    [
        (87, 96, 106),
        (164, 14, 38),
        (17, 99, 41),
        (108, 74, 0),
        (10, 48, 105),
        (102, 57, 186),
        (11, 84, 99),
        (66, 74, 83),
    ],
)
"""Colours of the 16 ANSI colours in the page (256-colour and RGB codes keep theirs)."""


@dataclass(frozen=True, slots=True)
class LogWindow:
    """Bytes ``start``..``end`` of a log of ``size`` bytes, and where the neighbour pages start."""

    start: int
    end: int
    size: int

    @property
    def earlier(self) -> int | None:
        """Return the offset of the previous page (``None`` at the log's start)."""
        return max(0, self.start - LOG_PAGE_BYTES) if self.start > 0 else None

    @property
    def later(self) -> int | None:
        """Return the offset of the next page (``None`` at the log's end)."""
        return self.end if self.end < self.size else None

    @property
    def at_tail(self) -> bool:
        """Return whether the window ends at the log's end (live bytes append to it)."""
        return self.end >= self.size


def log_window(size: int, offset: int | None) -> LogWindow:
    """Return the window at ``offset`` (``None``: the tail) of a log of ``size`` bytes."""
    start = max(0, size - LOG_PAGE_BYTES) if offset is None else min(max(0, offset), size)
    return LogWindow(start, min(size, start + LOG_PAGE_BYTES), size)


def ansi_to_html(data: bytes) -> Markup:
    """Return log bytes as escaped HTML with ANSI SGR colours as styled spans."""
    text = data.decode("utf-8", errors="replace")
    if "\x1b" not in text:
        return Markup.escape(text)
    console = Console(
        record=True,
        file=io.StringIO(),
        width=1_000_000,  # no wrapping: the browser wraps
        color_system="truecolor",
        force_terminal=True,
        soft_wrap=True,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(Text.from_ansi(text, end=""), end="")
    # export_html escapes the text and inlines each style; the decoder drops one final newline.
    html = console.export_html(theme=LIGHT_THEME, inline_styles=True, code_format="{code}")
    return Markup(html + "\n" if text.endswith("\n") else html)
