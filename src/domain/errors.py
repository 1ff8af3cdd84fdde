"""Error hierarchy of the domain and its ports.

``CirrusError`` is the root of every error this program raises on purpose::

    CirrusError
    ├── ConfigError                 bad configuration (exit code 2); ``key`` names the key path
    ├── PolicyViolation             the security policy refuses a task or standby (exact texts)
    ├── ControllerError             a controller call failed
    │   ├── TransientControllerError    5xx, 429, connection errors, timeouts: retry with backoff
    │   └── DefiniteControllerError     4xx: an answer; ``code`` is the Twirp code
    │       └── SessionLostError        ``unauthenticated``: register again
    └── InstanceError               an isolation instance could not be created or used
"""

from __future__ import annotations


class CirrusError(Exception):
    """Root of the errors this program raises on purpose."""


class ConfigError(CirrusError):
    """A configuration value is missing, unknown or malformed; ``key`` is its dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


class PolicyViolation(CirrusError):
    """The worker's security policy refuses an isolation; ``str()`` is the exact wire message."""


class ControllerError(CirrusError):
    """A call to the controller failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransientControllerError(ControllerError):
    """The controller is unreachable or overloaded; the call may be retried."""


class DefiniteControllerError(ControllerError):
    """The controller answered with a definite refusal (a Twirp 4xx code)."""


class SessionLostError(DefiniteControllerError):
    """The controller does not know our session (``unauthenticated``): register again."""


class InstanceError(CirrusError):
    """An isolation instance could not be created, used or cleaned up."""
