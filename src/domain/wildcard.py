"""Wildcard patterns of ``allowed-images`` and ``allowed-volumes`` (spec §5.2).

The original uses ``wildcard.MatchSimple`` from ``IGLOU-EU/go-wildcard`` v1.0.3: ``*`` matches any
run of characters (also empty, also across ``/``), ``?`` matches exactly one character, every
other character is literal, and the whole text must match, case-sensitively. The original
matches recursively and panics on a ``?`` past the end of the text; here such a pattern simply
does not match, and the matcher is iterative so that no pattern can make it blow up.
"""

from __future__ import annotations

ANY_RUN = "*"
ANY_CHAR = "?"


def match_simple(pattern: str, text: str) -> bool:
    """Return whether ``pattern`` matches the whole of ``text`` (``*`` any run, ``?`` one char)."""
    p = t = 0
    # Position of the last ``*`` seen and the text position it currently stands in for: on a
    # mismatch, that star absorbs one more character and matching resumes after it. Only the
    # last star ever needs to grow, which keeps the work at O(len(pattern) * len(text)).
    star_p = -1
    star_t = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == ANY_RUN:
            star_p, star_t = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in (ANY_CHAR, text[t]):
            p += 1
            t += 1
        elif star_p >= 0:
            star_t += 1
            p, t = star_p + 1, star_t
        else:
            return False
    while p < len(pattern) and pattern[p] == ANY_RUN:
        p += 1
    return p == len(pattern)


def match_any(patterns: tuple[str, ...], text: str) -> bool:
    """Return whether at least one of ``patterns`` matches ``text``."""
    return any(match_simple(pattern, text) for pattern in patterns)
