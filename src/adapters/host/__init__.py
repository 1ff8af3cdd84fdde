"""The ``none`` isolation: commands run on the host in a private per-task directory."""

from adapters.host.instance import HostInstance, HostInstanceFactory
from adapters.host.process import BackgroundScript

__all__ = ["BackgroundScript", "HostInstance", "HostInstanceFactory"]
