"""The worker's libraries, imported without the optional integrations a worker never uses.

``dependency_injector`` imports its starlette and pydantic-settings integrations whenever those
packages are installed (this project installs starlette for the controller; the worker's
configuration loads pydantic-settings only when ``CIRRUS_WORKER_*`` variables are set), and
``httpx`` imports pygments for its own command line and httpcore the HTTP/2 stack. A worker
uses none of them, yet
they stay resident for its whole life: about 4 MB of an idle worker. Hiding them while these
libraries are first imported makes the libraries skip them, as if they were not installed; they
import normally afterwards (the controller's web server, a ``--listen`` probe server).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, cast

# Optional imports of dependency_injector (wiring, Configuration), httpx and httpcore.
UNUSED_INTEGRATIONS = ("starlette", "fastapi", "pydantic_settings", "pygments", "h2")
LIBRARIES = ("dependency_injector.containers", "dependency_injector.providers", "httpx")


def import_without_unused_integrations() -> None:
    """Import ``LIBRARIES`` with ``UNUSED_INTEGRATIONS`` hidden; a no-op once they are loaded."""
    if all(name in sys.modules for name in LIBRARIES):
        return
    hidden = [name for name in UNUSED_INTEGRATIONS if name not in sys.modules]
    # A None entry makes ``import name`` raise ImportError; typeshed allows only modules there.
    modules = cast(dict[str, Any], sys.modules)
    for name in hidden:
        modules[name] = None
    try:
        for library in LIBRARIES:
            importlib.import_module(library)
    finally:
        for name in hidden:
            if name in modules and modules[name] is None:
                del modules[name]
