"""The standby VM (spec §7, with its failures fixed): one warm VM waiting for a task like it.

Creation runs in the background, never in the poll loop, so a slow or failing standby never
delays a poll; failures back off exponentially (``StandbyBackoff``). A task whose isolation
equals the standby's takes the VM over (with its resource modifier); any other task makes the
standby go (destroyed in the background) and runs on a fresh instance. The decisions are the
domain's (``domain.standby``); this module owns the VM, the timers and the background tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from domain.errors import ConfigError, InstanceError, PolicyViolation
from domain.isolation import TartIsolation, instance_attributes, isolation_kind
from domain.modifiers import ModifierPool
from domain.policy import SecurityPolicy, check_isolation
from domain.ports import Clock, Instance, VmFactory, WarmableInstance
from domain.protocol import AgentAwareTask, StandbyInformation, StandbyParameters
from domain.standby import (
    StandbyBackoff,
    check_standby_isolation,
    is_hit,
    parameters_changed,
    prepull_due,
    should_create,
)
from domain.telemetry import Metrics

log = logging.getLogger("cirrus.worker")

# The VM name's ident: ``cirrus-cli-standby-<uuid>`` (tests check that CIRRUS_VM_ID starts so).
STANDBY_IDENT = "standby"


@dataclass(frozen=True, slots=True)
class PrePull:
    """``tart-pre-pull``: images pulled before a standby's warm-up, at most every interval."""

    images: tuple[str, ...] = ()
    check_interval_seconds: float = 0.0
    jitter_seconds: float = 0.0


class StandbyKeeper:
    """Owns the standby VM: creates it in the background, hands it over or destroys it."""

    def __init__(
        self,
        parameters: StandbyParameters | None,
        *,
        vms: Mapping[str, VmFactory],
        policy: SecurityPolicy,
        modifiers: ModifierPool,
        clock: Clock,
        metrics: Metrics,
        pre_pull: PrePull | None = None,
        backoff: StandbyBackoff | None = None,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.parameters = parameters
        self._vms = dict(vms)
        self._policy = policy
        self._modifiers = modifiers
        self._clock = clock
        self._metrics = metrics
        self._pre_pull = pre_pull or PrePull()
        self.backoff = backoff or StandbyBackoff()
        self._random = random_fraction
        self._enabled = True
        # The warm VM, the parameters it was made with, the modifier owner id it holds, and
        # the wall-clock time its warm-up finished.
        self._ready: WarmableInstance | None = None
        self._ready_parameters: StandbyParameters | None = None
        self._ready_owner = ""
        self._ready_at: float | None = None
        self._creating: asyncio.Task[None] | None = None
        self._creating_parameters: StandbyParameters | None = None
        self._creating_owner = ""
        self._closing: set[asyncio.Task[None]] = set()
        self._last_pre_pull: float | None = None
        # One modifier owner id per standby VM: a late release of a destroyed standby's
        # modifier can never free the one its successor holds.
        self._generation = itertools.count(1)
        self.on_change: Callable[[], None] = lambda: None

    # --- what the worker reports ------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether a warmed-up standby VM waits for a task."""
        return self._ready is not None

    @property
    def busy(self) -> bool:
        """Whether a standby is being created or destroyed right now."""
        return self._creating is not None or bool(self._closing)

    def since(self) -> float | None:
        """Wall-clock time the current standby finished warming up; None without one."""
        return self._ready_at

    def information(self, now: float) -> tuple[StandbyInformation, ...]:
        """``availableStandbyInstancesInformation``: the warm standby and its age, or nothing."""
        if self._ready is None or self._ready_parameters is None or self._ready_at is None:
            return ()
        age = max(0, int(now - self._ready_at))
        return (StandbyInformation(self._ready_parameters, age),)

    # --- creation ---------------------------------------------------------------------------

    def maybe_create(self, running_tasks: int, free: Mapping[str, float]) -> bool:
        """Start creating a standby in the background when one is due; return whether it did."""
        if not self._enabled or self._creating is not None or self._closing:
            return False
        if not should_create(self.parameters, self._ready is not None, running_tasks, free):
            return False
        if not self.backoff.may_try(self._clock.monotonic()):
            return False
        assert self.parameters is not None
        parameters = self.parameters
        owner = f"standby-{next(self._generation)}"
        self._creating_parameters = parameters
        self._creating_owner = owner
        self._creating = asyncio.create_task(
            self._create(parameters, owner), name="standby creation"
        )
        return True

    async def _create(self, parameters: StandbyParameters, owner: str) -> None:
        vm: WarmableInstance | None = None
        try:
            log.info("creating a standby %s instance", isolation_kind(parameters.isolation))
            check_isolation(self._policy, parameters.isolation)
            kind = isolation_kind(parameters.isolation)
            factory = self._vms.get(kind)
            if factory is None:
                raise InstanceError(f"isolation {kind!r} cannot be a standby on this worker")
            lazy_pull = await self._pre_pull_images(parameters)
            modifier = self._modifiers.acquire(owner, parameters.resources)
            vm = await factory.create(
                STANDBY_IDENT,
                parameters.isolation,
                run_args=modifier.run_args if modifier is not None else (),
                ident=STANDBY_IDENT,
                lazy_pull=lazy_pull,
            )
            await vm.warm_up(parameters.warmup.script, float(parameters.warmup.timeout_seconds))
        except asyncio.CancelledError:
            await self._dispose(vm, owner)
            raise
        except Exception as error:
            self.backoff.failed(self._clock.monotonic(), self._random())
            delay = max(0.0, (self.backoff.next_attempt_at or 0.0) - self._clock.monotonic())
            if isinstance(error, InstanceError | PolicyViolation):
                log.error(
                    "failed to create a standby instance: %s; retrying in %.0f s", error, delay
                )
            else:
                log.exception("failed to create a standby instance; retrying in %.0f s", delay)
            await self._dispose(vm, owner)
            self._creating = None
            self._creating_parameters = None
            self.on_change()
            return
        self.backoff.succeeded()
        self._creating = None
        self._creating_parameters = None
        self._ready, self._ready_parameters, self._ready_owner = vm, parameters, owner
        self._ready_at = self._clock.now()
        log.info("standby instance %s is warm", vm.name)
        self.on_change()

    async def _pre_pull_images(self, parameters: StandbyParameters) -> bool:
        """Pull the ``tart-pre-pull`` images when due; return whether warm-up may skip its pull."""
        images = self._pre_pull.images
        if not images:
            return False
        isolation = parameters.isolation
        lazy = isinstance(isolation, TartIsolation) and isolation.image in images
        now = self._clock.monotonic()
        jitter = self._random() * self._pre_pull.jitter_seconds
        interval = self._pre_pull.check_interval_seconds
        tart = self._vms.get("tart")
        if tart is not None and prepull_due(self._last_pre_pull, now, interval, jitter):
            for image in images:
                log.info("pre-pulling %s", image)
                try:
                    await tart.pull(image)
                except InstanceError as error:
                    log.warning("pre-pulling %s failed: %s", image, error)
            self._last_pre_pull = now
        return lazy

    # --- use by tasks ------------------------------------------------------------------------

    async def take(self, task: AgentAwareTask) -> Instance | None:
        """The standby VM when ``task`` hits it (with its modifier), else None after a miss.

        A standby still warming up is waited for when the task would hit it, and abandoned
        when it would not. On a miss the VM is destroyed in the background, except that a task
        waits for it to go when the standby holds a resource modifier (a device it may need).
        """
        creating = self._creating
        if creating is not None and self._creating_parameters is not None:
            if is_hit(self._creating_parameters, task.isolation):
                await asyncio.wait({creating})
            else:
                owner = self._creating_owner
                # A miss like any other (§7.3): the standby exists, it is only not warm yet.
                self._metrics.standby_miss(instance_attributes(self._creating_parameters.isolation))
                self._abandon_creation()
                log.info("task %s does not match the standby being created", task.task_id)
                if owner in self._modifiers.held():
                    await asyncio.wait({creating})
        vm, parameters, owner = self._ready, self._ready_parameters, self._ready_owner
        if vm is None or parameters is None:
            return None
        self._clear_ready()
        if is_hit(parameters, task.isolation):
            log.info("task %s takes over the standby instance %s", task.task_id, vm.name)
            self._metrics.standby_hit(vm.attributes)
            self._modifiers.transfer(owner, task.task_id)
            self.on_change()
            return vm
        log.info("task %s does not match the standby; destroying %s", task.task_id, vm.name)
        self._metrics.standby_miss(vm.attributes)
        held = owner in self._modifiers.held()
        closing = self._destroy_in_background(vm, owner)
        self.on_change()
        if held:
            await asyncio.wait({closing})
        return None

    # --- parameters, drain, shutdown ---------------------------------------------------------

    def update(self, pushed: StandbyParameters) -> None:
        """Apply controller-pushed parameters: only Tart or Vetu; different ones replace the VM."""
        try:
            check_standby_isolation(pushed.isolation)
        except ConfigError as error:
            log.warning("ignoring the standby parameters from the controller: %s", error.message)
            return
        if not parameters_changed(self.parameters, pushed):
            return
        log.info("the standby parameters changed; replacing the standby instance")
        self.parameters = pushed
        self.backoff.succeeded()
        self._discard_current()

    def discard(self) -> None:
        """Destroy the standby (in the background) and create none any more (drain)."""
        self._enabled = False
        self._discard_current()

    async def aclose(self) -> None:
        """``discard``, then wait until every standby VM is gone."""
        self.discard()
        while self._closing:
            await asyncio.wait(set(self._closing))

    def _discard_current(self) -> None:
        if self._creating is not None:
            self._abandon_creation()
        vm, owner = self._ready, self._ready_owner
        if vm is not None:
            self._clear_ready()
            self._destroy_in_background(vm, owner)
        self.on_change()

    def _clear_ready(self) -> None:
        self._ready = None
        self._ready_parameters = None
        self._ready_owner = ""
        self._ready_at = None

    def _abandon_creation(self) -> None:
        creating = self._creating
        if creating is None:
            return
        self._creating = None
        self._creating_parameters = None
        if creating.done():
            return
        creating.cancel()
        # Cancelled creation destroys what it made; wait for that as for any other destroy.
        self._track_closing(creating)

    def _destroy_in_background(self, vm: WarmableInstance, owner: str) -> asyncio.Task[None]:
        closing = asyncio.create_task(self._dispose(vm, owner), name=f"destroying {vm.name}")
        self._track_closing(closing)
        return closing

    def _track_closing(self, task: asyncio.Task[None]) -> None:
        self._closing.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._closing.discard(finished)
            # Retrieve a cancellation so asyncio does not log it; errors were logged already.
            if not finished.cancelled():
                finished.exception()
            self.on_change()

        task.add_done_callback(done)

    async def _dispose(self, vm: WarmableInstance | None, owner: str) -> None:
        try:
            if vm is not None:
                try:
                    await vm.close()
                except Exception:
                    log.exception("destroying the standby instance %s failed", vm.name)
        finally:
            self._modifiers.release(owner)
