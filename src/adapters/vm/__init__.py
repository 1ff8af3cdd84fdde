"""Tart and Vetu isolation: VMs driven through the tools' command lines, used over SSH.

asyncssh still imports cryptography's DSA classes, which cryptography 51 deprecates with a
``CryptographyDeprecationWarning`` (a ``UserWarning``, so Python shows it by default) each time
``asyncssh.crypto.dsa`` and ``asyncssh.crypto.misc`` load. The worker never offers or accepts
DSA keys, and the warning says nothing to a user: exactly that warning, raised by those two
modules, is silenced before any module of this package imports asyncssh. ``pyproject.toml``
names the same filter for the tests.
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

warnings.filterwarnings(
    "ignore",
    message="DSA is deprecated",
    category=CryptographyDeprecationWarning,
    module=r"asyncssh\.crypto\.(dsa|misc)\Z",
)

# The filter must be in place before these imports load asyncssh.

from adapters.vm.cli import VmCli  # noqa: E402
from adapters.vm.instance import (  # noqa: E402
    WORKING_DIR,
    VmInstance,
    VmInstanceFactory,
    vm_name,
)
from adapters.vm.state import VmRecord, VmStateFile  # noqa: E402

__all__ = [
    "WORKING_DIR",
    "VmCli",
    "VmInstance",
    "VmInstanceFactory",
    "VmRecord",
    "VmStateFile",
    "vm_name",
]
