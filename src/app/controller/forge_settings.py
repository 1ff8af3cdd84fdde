"""The controller file's keys for forges: the public URL status links point to, the status
outbox's retry policy and how often crons are checked.

``public-url`` (default: the listen URL), ``forge-retry-initial-seconds`` (2),
``forge-retry-max-seconds`` (600: a forge down for long is asked every ten minutes),
``forge-scan-seconds`` (2: how often builds are checked for status changes another
controller made) and ``cron-check-seconds`` (30).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from app.controller_tokens import ControllerSetupError
from domain.repositories import RepositoryError, check_url

PUBLIC_URL_KEY = "public-url"
RETRY_INITIAL_KEY = "forge-retry-initial-seconds"
RETRY_MAX_KEY = "forge-retry-max-seconds"
SCAN_KEY = "forge-scan-seconds"
CRON_CHECK_KEY = "cron-check-seconds"
FORGE_FILE_KEYS = (PUBLIC_URL_KEY, RETRY_INITIAL_KEY, RETRY_MAX_KEY, SCAN_KEY, CRON_CHECK_KEY)


@dataclass(frozen=True, slots=True)
class ForgeSettings:
    """How the controller talks to forges ("" public URL: the listen URL)."""

    public_url: str = ""
    retry_initial_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    scan_seconds: float = 2.0
    cron_check_seconds: float = 30.0
    claim_seconds: float = 60.0  # how long a controller posting a status holds its row


def forge_settings_of(values: Mapping[str, str]) -> ForgeSettings:
    """Return the settings of the controller file's ``values``; ``ControllerSetupError`` names
    a bad key."""
    public = values.get(PUBLIC_URL_KEY, "")
    if public:
        try:
            public = check_url(public, PUBLIC_URL_KEY)
        except RepositoryError as error:
            raise ControllerSetupError(PUBLIC_URL_KEY, str(error)) from None
    return ForgeSettings(
        public_url=public,
        retry_initial_seconds=_seconds(values, RETRY_INITIAL_KEY, 2.0),
        retry_max_seconds=_seconds(values, RETRY_MAX_KEY, 600.0),
        scan_seconds=_seconds(values, SCAN_KEY, 2.0),
        cron_check_seconds=_seconds(values, CRON_CHECK_KEY, 30.0),
    )


def _seconds(values: Mapping[str, str], key: str, default: float) -> float:
    text = values.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 86400):
        raise ControllerSetupError(
            key, f"must be a number of seconds from 0 to 86400, not {text!r}"
        )
    return value
