"""``$VAR`` / ``${VAR}`` expansion, the two ways Cirrus did it.

Cirrus expanded variables in two places, with two different rules, and both are kept here:

``expand`` is the configuration parser's rule (``pkg/parser/expander`` of cirrus-cli), used for
task names, aliases, images, cpu/memory, labels, ``depends_on``, condition variables and
``changesInclude`` patterns. It is plain text replacement of ``$NAME``, ``${NAME}`` and
``%NAME%`` for every *known* name, longest names first, repeated (at most 10 rounds) while the
text still changes, so a value that refers to another variable is expanded too:

* an unknown variable stays as written (``$NOPE`` is still ``$NOPE``), so is a lone ``$``,
  ``$$`` and ``${`` without a name: nothing but known names is ever replaced;
* there is no ``${VAR:-default}`` form (the text stays as written unless ``VAR:-default`` is
  itself a variable name, which it never is);
* the replacement is textual, not by token: with ``CIRRUS=true`` known and ``CIRRUS_X``
  unknown, ``$CIRRUS_X`` reads ``true_X``, as on Cirrus. Longest names go first, so a known
  ``CIRRUS_BRANCH`` is never read as ``$CIRRUS`` + ``_BRANCH``.

``expand_environment`` is the agent's rule (``internal/agent/environment``): the rule for the
values of a task's ``env`` before its commands run, shell-like (``os.Expand``), see there. It
reads each value with ``agent_environment.expand_text``, the one reader that also expands a
command's text at run time (once there, in rounds here).
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.agent_environment import expand_text

# The original stops there; a value that keeps growing (``A: $A$A``) must not loop forever.
_MAX_ROUNDS = 10


def expand(text: str, environment: Mapping[str, str]) -> str:
    """Return ``text`` with the known ``$NAME``, ``${NAME}`` and ``%NAME%`` replaced, as the
    Cirrus configuration parser does (unknown names stay as written)."""
    if "$" not in text and "%" not in text:
        return text
    # Reverse order puts every name before its own prefixes (CIRRUS_BRANCH before CIRRUS).
    names = sorted((name for name in environment if name), reverse=True)
    for _ in range(_MAX_ROUNDS):
        before = text
        for name in names:
            value = environment[name]
            text = text.replace(f"${name}", value)
            text = text.replace(f"${{{name}}}", value)
            text = text.replace(f"%{name}%", value)
        if text == before:
            break
    return text


def expand_environment(
    environment: Mapping[str, str],
    base: Mapping[str, str] | None = None,
    *,
    keep_unknown: bool = False,
) -> dict[str, str]:
    """Return ``environment`` with every value expanded as the Cirrus agent expands a task's
    environment: references to ``base`` and to the other variables, recursively.

    Precedence of a reference ``$NAME``: ``base`` first (on Cirrus, the agent's own process
    environment: ``$HOME``, ``$PATH``), then ``environment`` itself (values already expanded).
    The variable's own value always comes from ``environment``; ``base`` only feeds references.
    The result has the keys of ``environment`` only.

    The syntax is the shell's, as Go's ``os.Expand`` reads it: ``$NAME`` (letters, digits,
    ``_``), ``${NAME}``, ``%NAME%``, ``${NAME:default}`` (the default is the text after the
    first ``:``; ``${X:-y}`` defaults to ``-y``). An unknown name becomes its default (``""``),
    or stays as written with ``keep_unknown`` (for a step that does not know the final
    environment yet, e.g. ``$HOME`` before the worker is chosen). ``$$``, ``$1`` and friends
    are names that are never set, so they read ``""`` too; a ``$`` before any other character,
    or at the end, stays.

    A value that still refers to itself after expansion keeps its previous value: with no
    ``PATH`` in ``base``, ``PATH: $HOME/bin:$PATH`` stays as written (the shell expands it
    later), and ``A: $B`` / ``B: $A`` both stay. Expansion stops after 10 rounds.
    """
    outside = base or {}
    result = dict(environment)

    def lookup(name: str) -> str | None:
        if name in outside:
            return outside[name]
        return result.get(name)

    for _ in range(_MAX_ROUNDS):
        changed = False
        for key, value in result.items():
            expanded = expand_text(value, lookup, keep_unknown=keep_unknown)
            if any(mark + key in expanded for mark in ("$", "${", "%")):
                continue
            if expanded != value:
                result[key] = expanded
                changed = True
        if not changed:
            break
    return result
