"""The worker's log level names (logrus's set) mapped onto Python ``logging`` levels."""

from __future__ import annotations

import logging

from domain.errors import ConfigError

TRACE = 5
"""Below ``DEBUG``: wire-level detail (logrus ``trace``)."""

logging.addLevelName(TRACE, "TRACE")

_LEVELS: dict[str, int] = {
    # Python has nothing above CRITICAL; a worker never panics on purpose, so both mean "only
    # the worst".
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}


def parse_level(name: str) -> int:
    """Return the ``logging`` level of a config level name (case-insensitive)."""
    try:
        return _LEVELS[name.strip().lower()]
    except KeyError:
        raise ConfigError("log.level", f'not a valid log level: "{name}"') from None
