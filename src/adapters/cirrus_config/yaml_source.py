"""``.cirrus.yml`` text to the configuration tree, read as Cirrus's Go YAML reader read it.

Cirrus parsed with gopkg.in/yaml.v3 (a port of libyaml) into its own tree, and this loader
reproduces that tree with PyYAML:

* Tabs: libyaml accepts a tab wherever it is plain white space (inside a plain scalar, after a
  value, before a comment); PyYAML refuses every tab outside quotes. ``_GoYamlLoader`` overrides
  two scanner methods with libyaml's rules, and nothing else of the scanner.
* Scalars resolve as yaml.v3 does (YAML 1.2 core: ``yes``/``on`` are strings, ``0777`` is octal),
  and ``Scalar.text`` keeps them as written (``1.10`` stays ``"1.10"``).
* Only the first document is read, as ``yaml.Unmarshal`` does; an anchor may be redefined
  (later aliases see the new one), which PyYAML alone refuses.
* ``<<`` merges follow Cirrus's lax rules rather than YAML 1.1's: merged pairs stand where the
  ``<<`` key stood; a merged key the mapping already had before the ``<<`` is dropped unless it
  is a field Cirrus collects or repeats (``env``, instances, ``on_failure``, ...), which is then
  kept twice for the parser to combine; keys written after the ``<<`` are kept as well (the last
  one wins). ``<<: *LIST`` (an alias of a sequence) turns the mapping into that sequence, the
  form ``matrix: {<<: *ROWS}`` relies on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from domain.cirrus_config.limits import (
    MAX_DEPTH_KEY,
    MAX_NODES_KEY,
    ConfigLimitError,
    ConfigLimits,
)
from domain.cirrus_config.nodes import CirrusConfigError, Node, Pairs, Position, Scalar, Sequence

_TAG = "tag:yaml.org,2002:"
_NULL, _BOOL, _INT, _FLOAT, _STR = (_TAG + name for name in ("null", "bool", "int", "float", "str"))
_MERGE = _TAG + "merge"
_BREAKS = "\r\n\x85\u2028\u2029"

# yaml.v3's table of plain scalars with a fixed meaning (resolve.go); everything else that is
# not a number is a string.
_FIXED_GROUPS: tuple[tuple[str, object, tuple[str, ...]], ...] = (
    (_BOOL, True, ("true", "True", "TRUE")),
    (_BOOL, False, ("false", "False", "FALSE")),
    (_NULL, None, ("", "~", "null", "Null", "NULL")),
    (_FLOAT, float("nan"), (".nan", ".NaN", ".NAN")),
    (_FLOAT, float("inf"), (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")),
    (_FLOAT, float("-inf"), ("-.inf", "-.Inf", "-.INF")),
    (_MERGE, "<<", ("<<",)),
)
_FIXED = {text: (tag, value) for tag, value, texts in _FIXED_GROUPS for text in texts}
_INT_TEXT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_FLOAT_TEXT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")

_COLLECTED_FIELDS = frozenset(
    {
        "env",
        "environment",
        "only_if",
        "skip",
        "allow_failures",
        "timeout_in",
        "container",
        "persistent_worker",
        "upload_caches",
        "on_success",
        "on_failure",
        "always",
        "on_timeout",
        "trigger_type",
        "auto_cancellation",
        "required_pr_labels",
        "stateful",
        "experimental",
        "use_compute_credentials",
        "execution_lock",
    }
)


def cirrus_merge_exemption(key: str) -> bool:
    """Return whether a merged ``key`` is kept even when the mapping already has it (Cirrus's
    collectible and repeatable fields: environment, conditions, instances, behaviours)."""
    return key in _COLLECTED_FIELDS or key.endswith(("_container", "_instance"))


def load_yaml(
    text: str,
    keep_merged: Callable[[str], bool] = cirrus_merge_exemption,
    limits: ConfigLimits = ConfigLimits(),  # noqa: B008  # frozen, shared safely
) -> Node | None:
    """Return the tree of the first YAML document of ``text`` (None when it is empty), or raise
    ``CirrusConfigError`` naming the problem and where it stands (``ConfigLimitError`` past
    ``limits.max_depth`` levels or ``limits.max_nodes`` nodes after alias expansion)."""
    loader: _GoYamlLoader | None = None
    try:
        # The reader refuses control characters, NUL and lone surrogates as it is made.
        loader = _GoYamlLoader(text)
        loader.max_depth = limits.max_depth
        root = loader.get_node() if loader.check_node() else None
        converter = _Converter(keep_merged, limits.max_depth, limits.max_nodes)
        return None if root is None else converter.convert(root)
    except yaml.MarkedYAMLError as error:
        raise CirrusConfigError(f"invalid YAML: {_describe(error)}", _mark(error)) from error
    except yaml.reader.ReaderError as error:
        raise _unacceptable(text, error) from error
    except yaml.YAMLError as error:
        raise CirrusConfigError(f"invalid YAML: {error}") from error
    finally:
        if loader is not None:
            loader.dispose()


def _unacceptable(text: str, error: yaml.reader.ReaderError) -> CirrusConfigError:
    # The reader gives an offset into the text (and names it "<unicode string>"): say where.
    before = text[: error.position]
    line = before.count("\n") + 1
    column = error.position - (before.rfind("\n") + 1) + 1
    character = error.character if isinstance(error.character, int) else 0
    return CirrusConfigError(
        f"invalid YAML: character U+{character:04X} is not allowed "
        "(a control character, NUL or lone surrogate)",
        Position(line, column),
    )


def _too_deep(max_depth: int, at: Position) -> ConfigLimitError:
    return ConfigLimitError(
        f"invalid YAML: nested more than {max_depth} levels deep ({MAX_DEPTH_KEY})",
        MAX_DEPTH_KEY,
        at,
    )


def _describe(error: yaml.MarkedYAMLError) -> str:
    parts = [part for part in (error.context, error.problem) if part]
    return ": ".join(parts) if parts else "unreadable text"


def _mark(error: yaml.MarkedYAMLError) -> Position:
    mark = error.problem_mark or error.context_mark
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position()


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _AliasNode(yaml.Node):
    """An alias as written: the node it names (``value``), its anchor name, and where it stands.

    PyYAML's composer hands back the anchored node itself; keeping the use visible lets a
    recursive alias be refused where it is written and ``<<: *LIST`` be told from ``<<: [...]``.
    """

    def __init__(self, anchor: str, target: yaml.Node, event: yaml.AliasEvent) -> None:
        super().__init__("!alias", target, target.start_mark, target.end_mark)
        self.start_mark = event.start_mark
        self.anchor = anchor


class _GoYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with libyaml's tab rules and yaml.v3's scalar resolution, refusing
    collections nested deeper than ``max_depth`` before its recursive composer reaches them."""

    max_depth = ConfigLimits().max_depth
    _depth = 0

    def scan_to_next_token(self) -> None:
        """Skip white space, comments and line breaks up to the next token.

        As libyaml does: a tab is white space in a flow collection and after a token that
        cannot be followed by a simple key (a scalar, a closing bracket); at the start of a
        line, or after ``-``, ``?`` or ``:``, it would be indentation, which YAML forbids.
        """
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            while self.peek() == " " or (
                self.peek() == "\t" and (self.flow_level or not self.allow_simple_key)
            ):
                self.forward()
            if self.peek() == "#":
                while self.peek() not in "\0" + _BREAKS:
                    self.forward()
            if not self.scan_line_break():  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def scan_plain_spaces(self, indent: int, start_mark: yaml.Mark) -> list[str] | None:
        """Scan the blanks between two words of a plain scalar, tabs included (libyaml).

        PyYAML stops a plain scalar at a tab; libyaml folds tabs like spaces, and refuses only a
        tab in the indentation of a continuation line.
        """
        chunks: list[str] = []
        length = 0
        while self.peek(length) in " \t":
            length += 1
        whitespaces = str(self.prefix(length))
        self.forward(length)
        if self.peek() not in _BREAKS:
            if whitespaces:
                chunks.append(whitespaces)
            return chunks
        line_break = str(self.scan_line_break())  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs
        self.allow_simple_key = True
        if self._document_marker():
            return None
        breaks: list[str] = []
        while self.peek() in " \t" + _BREAKS:
            if self.peek() == "\t" and self.column < indent:
                # A tab in the indentation ends the scalar; the scanner then refuses it.
                break
            if self.peek() in " \t":
                self.forward()
                continue
            breaks.append(str(self.scan_line_break()))  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs
            if self._document_marker():
                return None
        if line_break != "\n":
            chunks.append(line_break)
        elif not breaks:
            chunks.append(" ")
        chunks.extend(breaks)
        return chunks

    def _document_marker(self) -> bool:
        return bool(self.prefix(3) in ("---", "...") and self.peek(3) in "\0 \t" + _BREAKS)

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        """Return the tag of a node; a plain scalar is resolved as yaml.v3 does (YAML 1.2)."""
        if kind is yaml.ScalarNode and implicit[0]:
            return _plain_tag(value)
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Compose a node, keeping aliases visible and letting an anchor be defined again."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs
            target = super().compose_node(parent, index)
            assert target is not None  # the composer refuses an undefined alias
            return _AliasNode(str(event.anchor), target, event)
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            # yaml.v3 lets a later definition replace an earlier one; PyYAML refuses it.
            self.anchors.pop(anchor, None)
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                mark = event.start_mark
                at = Position(mark.line + 1, mark.column + 1) if mark else Position()
                raise _too_deep(self.max_depth, at)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _plain_tag(text: str) -> str:
    fixed = _FIXED.get(text)
    if fixed is not None:
        return fixed[0]
    number = _number(text) if text[:1] in "0123456789+-." else None
    if number is None:
        return _STR
    return _FLOAT if isinstance(number, float) else _INT


def _number(text: str) -> int | float | None:
    plain = text.replace("_", "") if text[:1] != "." else text
    match = _INT_TEXT.fullmatch(plain)
    if match is not None:
        sign, digits = match.groups()
        if digits[:2].lower() in ("0x", "0o", "0b"):
            number = int(digits, 0)
        else:
            number = int(digits, 8) if len(digits) > 1 and digits[0] == "0" else int(digits)
        number = -number if sign == "-" else number
        if -(2**63) <= number < 2**64:
            return number
    if _FLOAT_TEXT.fullmatch(plain):
        return float(plain)
    return None


def _scalar_value(node: yaml.ScalarNode) -> object:
    text = str(node.value)
    fixed = _FIXED.get(text)
    if fixed is not None and fixed[0] == node.tag:
        return fixed[1]
    if node.tag == _NULL:
        return None
    if node.tag in (_INT, _FLOAT):
        number = _number(text)
        if number is None:
            return text
        return float(number) if node.tag == _FLOAT else number
    return text


@dataclass(slots=True)
class _Converter:
    """Turns PyYAML's composed nodes into the configuration tree, expanding aliases."""

    keep_merged: Callable[[str], bool]
    max_depth: int
    max_nodes: int
    active: dict[int, str] | None = None
    count: int = 0
    depth: int = 0

    def convert(self, node: yaml.Node, at: Position | None = None) -> Node:
        """Return the tree of ``node``, placed at ``at`` (the alias's place) when given."""
        if isinstance(node, _AliasNode):
            return self._alias(node)  # counted as the nodes it expands to
        self.count += 1
        if self.count > self.max_nodes:
            raise ConfigLimitError(
                f"invalid YAML: more than {self.max_nodes} nodes once aliases are expanded "
                f"({MAX_NODES_KEY})",
                MAX_NODES_KEY,
                at or _position(node),
            )
        where = at or _position(node)
        if isinstance(node, yaml.ScalarNode):
            return Scalar(str(node.value), _scalar_value(node), where)
        # Aliases inside nested collections nest deeper than the text itself does.
        self.depth += 1
        try:
            if self.depth > self.max_depth:
                raise _too_deep(self.max_depth, where)
            if isinstance(node, yaml.SequenceNode):
                return Sequence(tuple(self.convert(child) for child in node.value), where)
            return self._mapping(node, where)
        finally:
            self.depth -= 1

    def _alias(self, alias: _AliasNode) -> Node:
        target: yaml.Node = alias.value
        active = self.active if self.active is not None else {}
        self.active = active
        if id(target) in active:
            raise CirrusConfigError(
                f"invalid YAML: recursive alias '{alias.anchor}'", _position(alias)
            )
        active[id(target)] = alias.anchor
        try:
            return self.convert(target, _position(alias))
        finally:
            del active[id(target)]

    def _mapping(self, node: yaml.Node, where: Position) -> Node:
        items: list[tuple[str, Node]] = []
        positions: list[Position] = []
        overwritten: Sequence | None = None
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE:
                overwritten = self._merge(value_node, items, positions) or overwritten
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise CirrusConfigError(
                    "invalid YAML: map key is not a string", _position(key_node)
                )
            # Cirrus wants string keys; a key such as ``1`` or ``true`` is read as its text.
            items.append((str(key_node.value), self.convert(value_node)))
            positions.append(_position(key_node))
        if overwritten is not None:
            if items:
                raise CirrusConfigError(
                    "invalid YAML: a mapping that merges a sequence (<<: *alias) "
                    "cannot have other keys",
                    where,
                )
            return Sequence(overwritten.items, where)
        return Pairs(tuple(items), where, tuple(positions))

    def _merge(
        self, value: yaml.Node, items: list[tuple[str, Node]], positions: list[Position]
    ) -> Sequence | None:
        if isinstance(value, yaml.SequenceNode):
            sources = [self.convert(child) for child in value.value]
        elif isinstance(value, yaml.MappingNode | _AliasNode):
            sources = [self.convert(value)]
        else:
            return None  # Cirrus ignores ``<<: text`` written in place
        if isinstance(value, _AliasNode) and isinstance(sources[0], Sequence):
            return sources[0]
        for source in sources:
            if not isinstance(source, Pairs):
                raise CirrusConfigError(
                    "invalid YAML: merge key should either be associated with a mapping "
                    "or a sequence of mappings",
                    _position(value),
                )
            for index, (key, child) in enumerate(source.items):
                if self.keep_merged(key) or all(key != name for name, _ in items):
                    items.append((key, child))
                    positions.append(source.key_at(index))
        return None
