"""The worker's libraries, imported without the optional integrations a worker never uses.

``dependency_injector`` imports its starlette integration whenever that package is installed
(this project installs starlette for the controller), and ``httpx`` imports
pygments for its own command line and httpcore the HTTP/2 stack. A worker uses none of them, yet
they stay resident for its whole life: about 4 MB of an idle worker. Hiding them while these
libraries are first imported makes the libraries skip them, as if they were not installed; they
import normally afterwards (the controller's web server, a ``--listen`` probe server).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, cast

# Optional imports of dependency_injector (wiring, Configuration), httpx and httpcore.
# (pydantic_settings is not among them: the worker's configuration reads its environment with it.)
UNUSED_INTEGRATIONS = ("starlette", "fastapi", "pygments", "h2")
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
