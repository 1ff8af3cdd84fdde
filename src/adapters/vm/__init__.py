"""Tart and Vetu isolation: VMs driven through the tools' command lines, used over SSH."""

from adapters.vm.cli import VmCli
from adapters.vm.instance import (
    WORKING_DIR,
    VmInstance,
    VmInstanceFactory,
    vm_name,
)
from adapters.vm.state import VmRecord, VmStateFile

__all__ = [
    "WORKING_DIR",
    "VmCli",
    "VmInstance",
    "VmInstanceFactory",
    "VmRecord",
    "VmStateFile",
    "vm_name",
]
