"""How the worker's event loop learns that a script's process ended: a pidfd, not a thread.

On Python 3.11 asyncio reaps each child with a thread of its own (``ThreadedChildWatcher``): a
thread started and joined per script costs the worker about 0.45 ms of CPU per process
(measured with ``/bin/true`` children; a trivial task starts one). Linux 5.3 and later give a
file descriptor per process that the loop polls like a socket (``PidfdChildWatcher``); Python
3.12 and later use it on their own where the kernel has it, and deprecate choosing a watcher.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings


def pidfd_supported() -> bool:
    """Whether this kernel opens process file descriptors (``pidfd_open``)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return False
    try:
        os.close(opener(os.getpid()))
    except OSError:
        return False
    return True


def watch_children_with_pidfds() -> bool:
    """On Python 3.11 with a pidfd-capable kernel, reap this loop's children through pidfds.

    Call from inside the running loop, before any child is started. Return whether the watcher
    was set (False: Python 3.12+ chooses for itself, or the kernel has no pidfds).
    """
    if sys.version_info >= (3, 12) or not pidfd_supported():
        return False
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    with warnings.catch_warnings():  # never raised on 3.11; kept quiet should that change
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(watcher)
    return True
