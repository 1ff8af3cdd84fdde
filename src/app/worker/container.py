"""Composition root of ``cirrus worker run``: configuration → clients → factories → worker.

Every provider can be overridden in tests (``container.clients.override(...)``). The validated
configuration comes in through a ``providers.Dependency``; nothing reads files or flags here.
"""

from __future__ import annotations

import functools
import platform
import socket
import sys
from pathlib import Path

from dependency_injector import containers, providers

from adapters import cache_archive
from adapters.blob_transfer import BlobTransfer
from adapters.config import WorkerConfig
from adapters.container.instance import ContainerInstanceFactory
from adapters.container.leftovers import remove_leftovers
from adapters.host.instance import HostInstanceFactory
from adapters.logging.masking import secret_registry
from adapters.source_fetch import fetch_source, task_workspace
from adapters.telemetry.controller_calls import MeteredControllerClient
from adapters.twirp.client import TwirpControllerClient
from app.version import version
from app.worker.clock import SystemClock
from app.worker.instances import IsolationInstances
from app.worker.poll_loop import Worker, WorkerSettings
from app.worker.standby import PrePull, StandbyKeeper
from app.worker.task_runner import TaskRunner
from app.worker.upstream import Upstream
from app.worker.vm_factories import (
    VM_STATE_FILE,
    VM_TOOLS,
    LazyVmFactory,
    VmTool,
    state_directory,
)
from domain.identity import go_arch, go_os, reserved_labels, worker_labels
from domain.modifiers import ModifierPool
from domain.policy import SecurityPolicy
from domain.ports import Clock, ContainerFactory, ControllerClient, InstanceFactory, VmFactory
from domain.protocol import WorkerInfo, frozen_float_map, frozen_str_map
from domain.telemetry import Metrics
from domain.telemetry_null import NullMetrics, NullTracing
from domain.worker_tools import LeftoverRemover, WorkerTools


def build_worker_info(config: WorkerConfig) -> WorkerInfo:
    """Return the ``WorkerInfo`` sent with every ``Register`` and ``Poll``."""
    reserved = reserved_labels(
        config.name,
        version(),
        socket.gethostname(),
        go_os(sys.platform),
        go_arch(platform.machine()),
    )
    return WorkerInfo(
        labels=frozen_str_map(worker_labels(reserved, config.labels)),
        resources_total=frozen_float_map(config.resources),
        # Reported so that the controller never offers a task this worker must refuse.
        security_policy=config.security_policy(),
    )


def build_clients(
    config: WorkerConfig, metrics: Metrics | None = None
) -> tuple[ControllerClient, ...]:
    """Return one Twirp client per configured upstream, each call timed into ``metrics``."""
    return tuple(
        MeteredControllerClient(
            TwirpControllerClient(upstream.endpoint, upstream.token, config.name),
            metrics or NullMetrics(),
        )
        for upstream in config.upstreams
    )


def build_upstreams(
    clients: tuple[ControllerClient, ...], worker_info: WorkerInfo, clock: Clock
) -> tuple[Upstream, ...]:
    """Wrap each client with its session state."""
    return tuple(Upstream(client, worker_info, clock=clock) for client in clients)


# SIGINT to SIGKILL of a cancelled command (PROTOCOL.md "Cancellation"); no config key sets it.
DEFAULT_GRACE_SECONDS = 10.0


def build_vm_factory(
    tool: VmTool, config: WorkerConfig, state_file: Path, grace_seconds: float
) -> VmFactory:
    """Return the factory of ``tool``; called at the first VM, as it imports asyncssh."""
    from adapters.vm import VmInstanceFactory

    return VmInstanceFactory(
        tool,
        policy=config.security_policy(),
        state_file=state_file,
        mtu=config.tuning_vetu_mtu,
        grace_seconds=grace_seconds,
    )


def build_vm_factories(config: WorkerConfig, grace_seconds: float) -> dict[str, VmFactory]:
    """Return the Tart and Vetu factories, recording their VMs in the worker's state file."""
    state_file = state_directory() / VM_STATE_FILE
    return {
        tool: LazyVmFactory(
            tool, functools.partial(build_vm_factory, tool, config, state_file, grace_seconds)
        )
        for tool in VM_TOOLS
    }


def build_tools() -> WorkerTools:
    """Return the host tools of the task use cases: blobs, cache archives, workspace, clone."""
    return WorkerTools(
        blobs=BlobTransfer,
        archives=cache_archive,  # the module implements the port with its functions
        workspace=task_workspace,
        fetch_source=fetch_source,
        # The logging filter's registry: one "too short to mask" warning per process.
        warn_unmaskable=secret_registry().warn_unmaskable,
    )


def build_leftover_remover() -> LeftoverRemover:
    """Return what removes dead workers' containers, with the engine found on this host."""
    return functools.partial(remove_leftovers, None)


def build_instances(
    host: InstanceFactory, container: ContainerFactory, vms: dict[str, VmFactory]
) -> IsolationInstances:
    """Return the instance factories by isolation kind: none, container, tart and vetu."""
    return IsolationInstances({"none": host}, container=container, vms=vms)


def build_standby(
    config: WorkerConfig,
    vms: dict[str, VmFactory],
    modifiers: ModifierPool,
    clock: Clock,
    metrics: Metrics,
) -> StandbyKeeper:
    """Return the keeper of the standby VM (idle until standby parameters exist)."""
    pre_pull = config.tart_pre_pull
    return StandbyKeeper(
        config.standby(),
        vms=vms,
        policy=config.security_policy(),
        modifiers=modifiers,
        clock=clock,
        metrics=metrics,
        pre_pull=PrePull(
            images=pre_pull.images,
            check_interval_seconds=float(pre_pull.check_interval_seconds),
            jitter_seconds=float(pre_pull.jitter_seconds),
        ),
    )


def build_settings(config: WorkerConfig, ephemeral: bool) -> WorkerSettings:
    """Return what the worker loop needs from the configuration."""
    return WorkerSettings(
        name=config.name,
        resources_total=frozen_float_map(config.resources),
        ephemeral=ephemeral,
        standby=config.standby(),
    )


def build_policy(config: WorkerConfig) -> SecurityPolicy:
    """Return the security policy of the configuration."""
    return config.security_policy()


def build_modifiers(config: WorkerConfig) -> ModifierPool:
    """Return the resource-modifier pool of the configuration."""
    return ModifierPool(config.resource_modifiers())


class WorkerContainer(containers.DeclarativeContainer):
    """Providers of everything ``worker run`` needs."""

    config = providers.Dependency(instance_of=WorkerConfig)
    ephemeral = providers.Dependency(instance_of=bool, default=False)
    # Telemetry that records nothing unless ``worker run`` overrides these with its own.
    metrics = providers.Singleton(NullMetrics)
    tracing = providers.Singleton(NullTracing)

    clock = providers.Singleton(SystemClock)
    worker_info = providers.Singleton(build_worker_info, config)
    clients = providers.Singleton(build_clients, config, metrics)
    upstreams = providers.Singleton(build_upstreams, clients, worker_info, clock)
    grace_seconds = providers.Object(DEFAULT_GRACE_SECONDS)
    host_instances = providers.Singleton(HostInstanceFactory, grace_seconds=grace_seconds)
    # The engine (podman or docker) is chosen at the first container task, not here: a worker
    # without one still starts, and fails only the container tasks.
    container_instances = providers.Singleton(ContainerInstanceFactory, grace_seconds=grace_seconds)
    vm_instances = providers.Singleton(build_vm_factories, config, grace_seconds)
    instances = providers.Singleton(
        build_instances, host_instances, container_instances, vm_instances
    )
    modifiers = providers.Singleton(build_modifiers, config)
    policy = providers.Singleton(build_policy, config)
    tools = providers.Singleton(build_tools)
    leftover_remover = providers.Singleton(build_leftover_remover)
    standby = providers.Singleton(build_standby, config, vm_instances, modifiers, clock, metrics)
    runner = providers.Singleton(
        TaskRunner,
        policy=policy,
        instances=instances,
        modifiers=modifiers,
        clock=clock,
        tools=tools,
        worker_name=config.provided.name,
        metrics=metrics,
        tracing=tracing,
        standby=standby,
    )
    settings = providers.Singleton(build_settings, config, ephemeral)
    worker = providers.Singleton(
        Worker, settings, upstreams, runner, clock=clock, metrics=metrics, standby=standby
    )
