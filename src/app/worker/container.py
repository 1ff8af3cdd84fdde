"""Composition root of ``cirrus worker run``: configuration → clients → factories → worker.

Every provider can be overridden in tests (``container.clients.override(...)``). The validated
configuration comes in through a ``providers.Dependency``; nothing reads files or flags here.
"""

from __future__ import annotations

import platform
import socket
import sys

from dependency_injector import containers, providers

from adapters.config import WorkerConfig
from adapters.container.instance import ContainerInstanceFactory
from adapters.host.instance import HostInstanceFactory
from adapters.telemetry.controller_calls import MeteredControllerClient
from adapters.telemetry.noop import NullMetrics, NullTracing
from adapters.twirp.client import TwirpControllerClient
from app.version import version
from app.worker.clock import SystemClock
from app.worker.instances import IsolationInstances
from app.worker.poll_loop import Worker, WorkerSettings
from app.worker.standby import PrePull, StandbyKeeper
from app.worker.task_runner import TaskRunner
from app.worker.upstream import Upstream
from app.worker.vm_factories import VM_STATE_FILE, VM_TOOLS, LazyVmFactory, state_directory
from domain.identity import go_arch, go_os, reserved_labels, worker_labels
from domain.modifiers import ModifierPool
from domain.policy import SecurityPolicy
from domain.ports import Clock, ContainerFactory, ControllerClient, InstanceFactory, VmFactory
from domain.protocol import WorkerInfo, frozen_float_map, frozen_str_map
from domain.telemetry import Metrics


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


def build_vm_factories(config: WorkerConfig, grace_seconds: float) -> dict[str, VmFactory]:
    """Return the Tart and Vetu factories, recording their VMs in the worker's state file."""
    state_file = state_directory() / VM_STATE_FILE
    return {
        tool: LazyVmFactory(
            tool,
            policy=config.security_policy(),
            state_file=state_file,
            mtu=config.tuning_vetu_mtu,
            grace_seconds=grace_seconds,
        )
        for tool in VM_TOOLS
    }


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
    standby = providers.Singleton(build_standby, config, vm_instances, modifiers, clock, metrics)
    runner = providers.Singleton(
        TaskRunner,
        policy=policy,
        instances=instances,
        modifiers=modifiers,
        clock=clock,
        worker_name=config.provided.name,
        metrics=metrics,
        tracing=tracing,
        standby=standby,
    )
    settings = providers.Singleton(build_settings, config, ephemeral)
    worker = providers.Singleton(
        Worker, settings, upstreams, runner, clock=clock, metrics=metrics, standby=standby
    )
