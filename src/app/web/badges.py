"""Status badges for READMEs: a small shields-like SVG of a build status."""

from __future__ import annotations

from markupsafe import escape

BADGE_COLOURS = {
    "COMPLETED": ("passing", "#2e7d32"),
    "FAILED": ("failing", "#c62828"),
    "ABORTED": ("aborted", "#6d6d6d"),
    "SKIPPED": ("skipped", "#6d6d6d"),
    "EXECUTING": ("running", "#1565c0"),
    "SCHEDULED": ("queued", "#8d6e00"),
    "CREATED": ("queued", "#8d6e00"),
}
UNKNOWN = ("unknown", "#6d6d6d")
CHAR_WIDTH = 7  # px per character of 11px Verdana, as shields estimates it
PADDING = 10


def badge_svg(label: str, status: str | None) -> str:
    """Return the SVG of a badge saying ``label`` and the words of a build ``status``."""
    message, colour = BADGE_COLOURS.get(status or "", UNKNOWN)
    left = len(label) * CHAR_WIDTH + PADDING
    right = len(message) * CHAR_WIDTH + PADDING
    width = left + right
    title = escape(f"{label}: {message}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2}" y="14">{escape(message)}</text></g></svg>'
    )
