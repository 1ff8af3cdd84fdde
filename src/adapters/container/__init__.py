"""The ``container`` isolation: commands run in a docker or podman container, one exec each."""

from adapters.container.additional import ADDITIONAL_LABEL
from adapters.container.engine import ContainerEngine, choose_engine
from adapters.container.instance import (
    PID_LABEL,
    SCRIPTS_DIR,
    TASK_LABEL,
    WORKING_DIR,
    ContainerInstance,
    ContainerInstanceFactory,
)
from adapters.container.leftovers import remove_leftovers

__all__ = [
    "ADDITIONAL_LABEL",
    "PID_LABEL",
    "SCRIPTS_DIR",
    "TASK_LABEL",
    "WORKING_DIR",
    "ContainerEngine",
    "ContainerInstance",
    "ContainerInstanceFactory",
    "choose_engine",
    "remove_leftovers",
]
