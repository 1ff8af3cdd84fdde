"""The ``none`` isolation: commands run on the host in a private per-task directory."""

from adapters.host.instance import HostBackgroundProcess, HostInstance, HostInstanceFactory

__all__ = ["HostBackgroundProcess", "HostInstance", "HostInstanceFactory"]
