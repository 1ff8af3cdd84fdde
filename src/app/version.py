"""The program's version, read from the installed distribution."""

from importlib import metadata

DISTRIBUTION = "cirrus-worker"


def version() -> str:
    """Return the installed version of this program, or ``unknown`` for a bare checkout."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
