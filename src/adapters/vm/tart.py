"""The ``tart`` command lines of a task's VM (spec §4.3, §11) and its directory shares.

Unnamed volumes get a generated name here, in a separate list: the task's ``TartIsolation`` is
never changed, so a standby with unnamed volumes can still match a later task (the original
renamed them in place, spec §7.3).
"""

from __future__ import annotations

import os
import shlex
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import InstanceError
from domain.isolation import TartIsolation, TartVolume

# Where macOS guests see Tart's directory shares.
SHARED_FILES_ROOT = "/Volumes/My Shared Files"
RUN_FLAGS = ("--no-graphics", "--no-clipboard", "--no-audio", "--root-disk-opts", "sync=none")
# ``tart clone`` must not prune the cache to make room (it could remove the standby's image).
CLONE_ENV = {"TART_NO_AUTO_PRUNE": ""}


@dataclass(frozen=True, slots=True)
class SharedDirectory:
    """A volume as the VM gets it: a name is always set; ``created`` if we made its source."""

    name: str
    source: str
    target: str
    read_only: bool
    created: bool

    @property
    def dir_option(self) -> str:
        """The ``--dir`` value: ``<name>:<source>[:ro]``."""
        return f"{self.name}:{self.source}" + (":ro" if self.read_only else "")


def name_volumes(volumes: Sequence[TartVolume]) -> list[TartVolume]:
    """Copies of ``volumes`` where an unnamed one gets a random UUID name."""
    return [
        v if v.name else TartVolume(str(uuid.uuid4()), v.source, v.target, v.read_only, v.cleanup)
        for v in volumes
    ]


def prepare_shared_directories(volumes: Sequence[TartVolume]) -> list[SharedDirectory]:
    """Name the volumes and create missing sources (0755, removed again at close).

    On failure, the sources made so far are removed before ``InstanceError`` is raised.
    """
    prepared: list[SharedDirectory] = []
    try:
        for volume in name_volumes(volumes):
            created = False
            try:
                os.stat(volume.source)
            except FileNotFoundError:
                try:
                    os.mkdir(volume.source, 0o755)
                except OSError as exc:
                    raise InstanceError(
                        f"failed to create volume source {volume.source}: {exc}"
                    ) from exc
                created = True
            except OSError as exc:
                raise InstanceError(f"failed to stat volume source {volume.source}: {exc}") from exc
            prepared.append(
                SharedDirectory(
                    volume.name, volume.source, volume.target, volume.read_only, created
                )
            )
    except BaseException:
        remove_created_sources(prepared)
        raise
    return prepared


def remove_created_sources(directories: Sequence[SharedDirectory]) -> None:
    """Remove the volume sources that ``prepare_shared_directories`` created (``rm -rf``)."""
    for directory in directories:
        if directory.created:
            shutil.rmtree(directory.source, ignore_errors=True)


def set_commands(vm: str, isolation: TartIsolation) -> list[list[str]]:
    """The ``tart set`` invocations: ``--random-mac`` always, then each option only if set."""
    commands = [["set", vm, "--random-mac"]]
    if isolation.cpu:
        commands.append(["set", vm, "--cpu", str(isolation.cpu)])
    if isolation.memory:
        commands.append(["set", vm, "--memory", str(isolation.memory)])
    if isolation.disk_size:
        commands.append(["set", vm, "--disk-size", str(isolation.disk_size)])
    if isolation.display:
        commands.append(["set", vm, "--display", isolation.display])
    return commands


def run_arguments(
    vm: str,
    isolation: TartIsolation,
    softnet: bool,
    softnet_allow: Sequence[str],
    directories: Sequence[SharedDirectory],
) -> list[str]:
    """The ``tart run`` arguments (softnet as the policy decided, see ``domain.policy``)."""
    args = ["run", *RUN_FLAGS]
    if softnet:
        args.append("--net-softnet")
        if softnet_allow:
            args += ["--net-softnet-allow", ",".join(softnet_allow)]
    if isolation.nested:
        args.append("--nested")
    for directory in directories:
        args += ["--dir", directory.dir_option]
    args.append(vm)
    return args


def link_command(directory: SharedDirectory, shared_root: str) -> str:
    """The initialization hook: symlink the share to its target inside the guest."""
    share = f"{shared_root.rstrip('/')}/{directory.name}"
    return f"ln -s {shlex.quote(share)} {shlex.quote(directory.target)}"


def unlink_command(directory: SharedDirectory) -> str:
    """The terminate hook: remove the symlink again."""
    return f"rm -f {shlex.quote(directory.target)}"
