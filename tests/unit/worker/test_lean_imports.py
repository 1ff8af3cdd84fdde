"""The worker's libraries load without the integrations it never uses, which stay importable."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from app.worker.lean_imports import UNUSED_INTEGRATIONS, import_without_unused_integrations
import_without_unused_integrations()
import app.worker.container
loaded = sorted(name for name in UNUSED_INTEGRATIONS if name in sys.modules)
import starlette.requests
from dependency_injector import containers, providers

class Probe(containers.DeclarativeContainer):
    value = providers.Singleton(dict, answer=42)

print(json.dumps({
    "loaded": loaded,
    "hidden_left": [name for name in UNUSED_INTEGRATIONS if sys.modules.get(name, 1) is None],
    "starlette": starlette.requests.Request.__name__,
    "provided": Probe().value()["answer"],
}))
"""


def test_the_worker_loads_without_unused_integrations_which_still_import_later() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(result.stdout)
    assert report["loaded"] == []
    assert report["hidden_left"] == []
    assert report["starlette"] == "Request"
    assert report["provided"] == 42
