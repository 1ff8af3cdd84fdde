"""The ``vetu`` command lines of a task's VM (spec §4.4, §8, §11)."""

from __future__ import annotations

from collections.abc import Sequence

from domain.isolation import VetuBridged, VetuHost, VetuIsolation


def set_commands(vm: str, isolation: VetuIsolation) -> list[list[str]]:
    """The ``vetu set`` invocations, one per non-zero option (no random MAC, no display)."""
    commands: list[list[str]] = []
    if isolation.cpu:
        commands.append(["set", vm, "--cpu", str(isolation.cpu)])
    if isolation.memory:
        commands.append(["set", vm, "--memory", str(isolation.memory)])
    if isolation.disk_size:
        commands.append(["set", vm, "--disk-size", str(isolation.disk_size)])
    return commands


def run_arguments(
    vm: str, isolation: VetuIsolation, mtu: int = 0, modifier_args: Sequence[str] = ()
) -> list[str]:
    """``vetu run [--net-bridged IF | --net-host] [--net-host-mtu MTU] [modifier args…] VM``.

    The MTU flag follows ``tuning.vetu.mtu`` whatever the networking mode, as in the original.
    """
    args = ["run"]
    match isolation.networking:
        case VetuBridged(interface=interface):
            args += ["--net-bridged", interface]
        case VetuHost():
            args.append("--net-host")
        case None:
            pass
    if mtu:
        args += ["--net-host-mtu", str(mtu)]
    args += list(modifier_args)
    args.append(vm)
    return args
