"""A task's environment while its commands run, kept the way the Cirrus agent kept it.

The task's own variables (CI variables, trace context, the response's ``environment``) are
expanded with ``cirrus_config.expand.expand_environment`` (the agent's rule) against the
environment a script starts with *in the instance* (``Instance.probe_environment``: the
worker's own on the host, an ``exec``'s in a container, the login shell's in a VM), because the
agent ran there and expanded against its own process environment. The probe is made only when
something needs it (a ``$``/``%`` reference, ``CIRRUS_SHELL``), once per task.

``CIRRUS_WORKING_DIR`` defaults to the instance's working directory and is made absolute.
``KEY=VALUE`` lines from a command's ``$CIRRUS_ENV`` file join the variables, then everything is
expanded again, as the agent's merge did; with ``CIRRUS_ENV_SENSITIVE`` set their values are
masked in later logs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from domain.agent_environment import CirrusEnvError, expand_for_command, parse_cirrus_env
from domain.cirrus_config.expand import expand_environment
from domain.errors import InstanceError
from domain.ports import Instance
from domain.script_launch import DIRECT, SHELL_VARIABLE, WORKING_DIR_VARIABLE, working_directory

log = logging.getLogger("cirrus.worker")

SENSITIVE_VARIABLE = "CIRRUS_ENV_SENSITIVE"


def _has_reference(text: str) -> bool:
    return "$" in text or "%" in text


class TaskEnvironment:
    """The variables of one task, the instance's base, and the values to mask in logs."""

    def __init__(
        self, instance: Instance, variables: Mapping[str, str], secrets: Sequence[str] = ()
    ) -> None:
        self._instance = instance
        self._base = dict(instance.base_environment())
        self._variables = dict(variables)
        self._variables.setdefault(WORKING_DIR_VARIABLE, instance.working_directory)
        self._probed: Mapping[str, str] | None = None
        self._masks = [secret for secret in secrets if secret]

    @property
    def variables(self) -> dict[str, str]:
        """The task's own variables as they stand now (expanded once ``prepare`` ran)."""
        return dict(self._variables)

    @property
    def masks(self) -> tuple[str, ...]:
        """Every value to hide in the logs of the next commands."""
        return tuple(self._masks)

    async def prepare(self) -> None:
        """Expand the variables and settle the working directory, before the first command."""
        await self._settle()

    async def for_command(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of the next command: base, the task's variables, ``extra``."""
        env = {**self._base, **self._variables}
        shell = self._variables.get(SHELL_VARIABLE)
        # The agent told the programs a script starts which shell it was, where SHELL existed
        # at all (not for ``direct``: there is no shell then).
        overridden = bool(shell) and shell != DIRECT and "SHELL" not in self._variables
        if shell and overridden and "SHELL" in await self._probe():
            env["SHELL"] = shell
        env.update(extra or {})
        return env

    async def expand_for_command(self, text: str, extra: Mapping[str, str] | None = None) -> str:
        """Expand ``text`` (a ``direct`` command line, a file path): task variables (and the
        command's ``extra`` ones, like ``CIRRUS_ENV``) first, then the instance's."""
        if not _has_reference(text):
            return text
        variables = {**self._variables, **(extra or {})}
        return expand_for_command(text, variables, await self._probe())

    async def merge_env_file(self, text: str) -> str | None:
        """Take a ``$CIRRUS_ENV`` file's lines into the variables; return the error, if any."""
        try:
            added = parse_cirrus_env(text)
        except CirrusEnvError as error:
            return str(error)
        if not added:
            return None
        self._variables.update(added)
        if SENSITIVE_VARIABLE in self._variables:
            self._masks.extend(value for value in added.values() if value)
        await self._settle()
        return None

    async def _settle(self) -> None:
        if any(_has_reference(value) for value in self._variables.values()):
            self._variables = expand_environment(self._variables, await self._probe())
        self._variables[WORKING_DIR_VARIABLE] = working_directory(
            self._variables, self._instance.working_directory
        )

    async def _probe(self) -> Mapping[str, str]:
        if self._probed is None:
            try:
                self._probed = await self._instance.probe_environment()
            except InstanceError as error:
                # Expanding against the known base is still better than failing the task.
                log.warning("cannot read the instance's environment: %s", error)
                self._probed = dict(self._base)
        return self._probed
