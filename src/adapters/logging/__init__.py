"""Process-wide logging for the ``log`` config section: levels, rotation, secret masking."""

from adapters.logging.levels import TRACE, parse_level
from adapters.logging.masking import SecretMaskingFilter, add_secret, add_secrets, secret_registry
from adapters.logging.rotation import SizeRotatingFileHandler
from adapters.logging.setup import configure_logging, shutdown_logging, terminal_log_console

__all__ = [
    "TRACE",
    "SecretMaskingFilter",
    "SizeRotatingFileHandler",
    "add_secret",
    "add_secrets",
    "configure_logging",
    "parse_level",
    "secret_registry",
    "shutdown_logging",
    "terminal_log_console",
]
