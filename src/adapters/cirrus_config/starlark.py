"""``.cirrus.star`` -> the configuration tree, by a real Starlark interpreter (starlark-rust).

As in the original (cirrus-cli ``pkg/larker``), the file's ``main(ctx)`` (or ``main()``) is called
and what it returns becomes configuration appended to ``.cirrus.yml``'s:

* a list of dicts: one ``task:`` per dict; a list of ``(key, value)`` tuples: those top-level
  pairs (Starlark dicts cannot repeat a key, the tuples can); not both kinds in one list;
* a dict: a whole configuration; a string: YAML text; a file without ``main``: nothing.

``load("cirrus", ...)`` gives the ``cirrus`` module (``starlark_builtins``):
``env``, ``fs``, ``yaml``, ``json``, ``re``, ``hash``, ``base64``, ``http`` (refused unless
allowed) and ``is_test``; ``load("other.star", ...)`` reads the build's source. Modules from git
(``github.com/...``, ``*.git``) and the hooks (``on_build_*``) are not supported here.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import starlark as sl

from adapters.cirrus_config.starlark_builtins import (
    JSON_SOURCE,
    MODULE_SOURCE,
    StarlarkCallError,
    cirrus_callables,
)
from domain.cirrus_config.nodes import (
    NOWHERE,
    CirrusConfigError,
    Node,
    Pairs,
    Position,
    Scalar,
    Sequence,
)
from domain.cirrus_config.parsing import SourceFiles

FILE_NAME = ".cirrus.star"
# Defined in the user's module after its own code: public names (starlark-rust calls no private
# function from outside), unlikely to collide with a user's.
_DRIVER_FILE = "<cirrus main>"
_DRIVER = """
def _cirrus_shape(result):
    if type(result) == "list":
        return {"type": "list", "items": [[type(x) == "tuple", x] for x in result]}
    if type(result) in ("dict", "string"):
        return {"type": type(result), "value": result}
    return {"type": type(result)}

def cirrus_main_is_function():
    return type(main) == "function"

def cirrus_call_main(with_context):
    if with_context:
        return _cirrus_shape(main(struct()))
    return _cirrus_shape(main())
"""
_PRINT = """
def print(*args, sep = " "):
    cirrus_print_line(sep.join([str(a) for a in args]))
"""
_GIT_MODULE = re.compile(r"^github\.com/|\.git(/|@|$)")
_SPAN = re.compile(r"^\s*--> (?P<file>.+?):(?P<line>\d+):(?P<column>\d+)\s*$", re.MULTILINE)
_FRAME = re.compile(r"^\s*\* (?P<file>.+?):(?P<line>\d+), in ", re.MULTILINE)
_EXTRA_ARGUMENT = f"extra positional argument(s) for call to {FILE_NAME}.main"


class NoSourceFiles:
    """A source with no files (the controller when it has no checkout)."""

    def read(self, path: str) -> bytes | None:
        """Return None: there are no files."""
        return None

    def list(self, directory: str) -> list[str] | None:
        """Return None: there are no directories."""
        return None


class LocalSourceFiles:
    """The files under a local directory; no path (``..``, a symlink) leads out of it."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _inside(self, path: str) -> Path | None:
        # "/a" and "a" both name root/a, as in the original's local file system.
        relative = Path("/", path).resolve().relative_to("/")
        target = (self._root / relative).resolve()
        return target if target.is_relative_to(self._root) else None

    def read(self, path: str) -> bytes | None:
        """Return the bytes of ``path`` under the root, or None."""
        target = self._inside(path)
        return target.read_bytes() if target is not None and target.is_file() else None

    def list(self, directory: str) -> list[str] | None:
        """Return the sorted names in ``directory`` under the root, or None."""
        target = self._inside(directory)
        if target is None or not target.is_dir():
            return None
        return sorted(entry.name for entry in target.iterdir())


YamlLoader = Callable[[str], Node | None]


@dataclass(frozen=True, slots=True)
class StarlarkContext:
    """What a ``.cirrus.star`` may see: YAML loading (for a string result), the build's
    environment and source files, whether ``http`` may be used, a time limit, where ``print``
    goes, the build's changed files (for ``changes_include``; empty when unknown)."""

    load_yaml: YamlLoader
    environment: Mapping[str, str] = field(default_factory=dict)
    files: SourceFiles = field(default_factory=NoSourceFiles)
    allow_http: bool = False
    timeout_seconds: float = 60.0
    on_print: Callable[[str], None] | None = None
    changed_files: tuple[str, ...] = ()


def evaluate_starlark(source: str, context: StarlarkContext) -> Pairs:
    """Run ``main`` of a ``.cirrus.star`` and return what it produced as top-level pairs."""
    evaluation = _Evaluation(source, context)
    try:
        shape = evaluation.call_main()
    except sl.StarlarkError as error:
        raise _translated(error, source) from None
    if shape is None:
        return Pairs(())
    return _result_pairs(shape, context.load_yaml)


class _Evaluation:
    """One evaluation: the modules loaded so far and the deadline."""

    def __init__(self, source: str, context: StarlarkContext) -> None:
        self._source = source
        self._context = context
        self._globals = sl.Globals.extended_by(
            [sl.LibraryExtension.StructType, sl.LibraryExtension.Json]
        )
        self._loaded: dict[str, sl.FrozenModule | None] = {}
        self._options = sl.EvalOptions(check_cancelled=_deadline(context.timeout_seconds))

    def call_main(self) -> dict[str, object] | None:
        """Evaluate the file and call its ``main``; None when it has none."""
        module = self._evaluate(FILE_NAME, self._source)
        try:
            value = module["main"]
        except sl.StarlarkError:
            value = ...  # a function: it cannot be converted to a Python value
        if value is None:
            return None
        self._run(module, _DRIVER_FILE, _DRIVER)
        frozen = module.freeze()
        if not frozen.call_with(self._options, "cirrus_main_is_function").value:
            raise CirrusConfigError(f"{FILE_NAME}: main is not a function")
        try:
            shape = frozen.call_with(self._options, "cirrus_call_main", True).value
        except sl.StarlarkError as error:
            # The original passes ctx only to a main that takes parameters.
            if _EXTRA_ARGUMENT not in str(error):
                raise
            shape = frozen.call_with(self._options, "cirrus_call_main", False).value
        assert isinstance(shape, dict)
        return shape

    def _evaluate(self, name: str, source: str) -> sl.Module:
        module = sl.Module()
        module.add_callable("cirrus_print_line", self._print)
        self._run(module, "<print>", _PRINT)
        self._run(module, name, source)
        return module

    def _run(self, module: sl.Module, name: str, source: str) -> None:
        ast = sl.parse(name, source, sl.Dialect.standard())
        sl.eval_with(self._options, module, ast, self._globals, sl.FileLoader(self._load))

    def _print(self, line: str) -> None:
        if self._context.on_print is not None:
            self._context.on_print(line)

    def _load(self, name: str) -> sl.FrozenModule:
        if name in self._loaded:
            loaded = self._loaded[name]
            if loaded is None:
                raise StarlarkCallError(f"load cycle: {name!r} loads itself")
            return loaded
        if name == "cirrus":
            module = self._cirrus_module()
        elif _GIT_MODULE.search(name):
            raise StarlarkCallError(
                f"loading Starlark modules from git ({name!r}) is not supported by this "
                "controller; copy the module into the repository and load it by its path"
            )
        else:
            data = self._context.files.read(name)
            if data is None:
                raise StarlarkCallError(f"module {name!r} not found in the repository")
            self._loaded[name] = None
            module = self._evaluate(name, data.decode("utf-8", errors="replace"))
        frozen = module.freeze()
        self._loaded[name] = frozen
        return frozen

    def _cirrus_module(self) -> sl.Module:
        module = sl.Module()
        module["env"] = dict(self._context.environment)
        callables = cirrus_callables(
            self._context.files, self._context.allow_http, self._context.changed_files
        )
        for name, function in callables:
            module.add_callable(name, function)
        self._run(module, "cirrus", JSON_SOURCE)
        self._run(module, "cirrus", MODULE_SOURCE)
        return module


def _deadline(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() > end


# --- errors -------------------------------------------------------------------------------


def _translated(error: sl.StarlarkError, source: str) -> CirrusConfigError:
    text = str(error)
    message = _message(text)
    spans = list(_SPAN.finditer(text))
    # The first span is where the error arose; when that is in a loaded file, say so.
    if spans and spans[0]["file"] not in (FILE_NAME, _DRIVER_FILE, "cirrus", "<print>"):
        inner = spans[0]
        message += f" (in {inner['file']}, line {inner['line']}, column {inner['column']})"
    ours = [span for span in spans if span["file"] == FILE_NAME]
    if ours:
        return CirrusConfigError(f"{FILE_NAME}: {message}", _position(ours[0]))
    frames = [frame for frame in _FRAME.finditer(text) if frame["file"] == FILE_NAME]
    return CirrusConfigError(f"{FILE_NAME}: {message}", _line_start(source, frames))


def _message(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("error: ")), None)
    if start is None:
        return " ".join(text.split())
    kept: list[str] = []
    for line in lines[start:]:
        if _SPAN.match(line):
            break
        kept.append(line.strip())
    message = " ".join(kept)
    # An error inside a loaded module arrives wrapped in the error of the load.
    for prefix in ("error: ", "StarlarkError: ", f"{StarlarkCallError.__name__}: ") * 2:
        message = message.removeprefix(prefix)
    return (
        "timed out (the evaluation took too long)" if message == "Evaluation cancelled" else message
    )


def _position(span: re.Match[str]) -> Position:
    return Position(int(span["line"]), int(span["column"]))


def _line_start(source: str, frames: list[re.Match[str]]) -> Position:
    if not frames:
        return NOWHERE
    line = int(frames[-1]["line"])
    text = source.splitlines()[line - 1] if line <= len(source.splitlines()) else ""
    return Position(line, len(text) - len(text.lstrip()) + 1)


# --- the result of main() -> nodes --------------------------------------------------------


def _result_pairs(shape: dict[str, object], load_yaml: YamlLoader) -> Pairs:
    kind = shape["type"]
    if kind == "dict":
        return _pairs(shape["value"])
    if kind == "string":
        return _yaml_pairs(str(shape["value"]), load_yaml)
    if kind != "list":
        raise CirrusConfigError(
            f"{FILE_NAME}: main() returned a value of type {kind}; "
            "it must return a list, a dict or a string"
        )
    items = shape["items"]
    assert isinstance(items, list)
    if {is_tuple for is_tuple, _ in items} == {True, False}:
        raise CirrusConfigError(
            f"{FILE_NAME}: main() returned a list of both dicts and tuples; use one kind"
        )
    return Pairs(tuple(_list_item(is_tuple, value) for is_tuple, value in items))


def _list_item(is_tuple: bool, value: object) -> tuple[str, Node]:
    if is_tuple:
        assert isinstance(value, list)  # a tuple arrives as a list
        if len(value) != 2 or not isinstance(value[0], str):
            raise CirrusConfigError(
                f"{FILE_NAME}: a tuple returned by main() must be (key, value) with a string key"
            )
        return value[0], _node(value[1])
    if not isinstance(value, dict):
        raise CirrusConfigError(f"{FILE_NAME}: main() must return a list of dicts or of tuples")
    return "task", _pairs(value)


def _yaml_pairs(text: str, load_yaml: YamlLoader) -> Pairs:
    try:
        node = load_yaml(text) if text.strip() else Pairs(())
    except CirrusConfigError as error:
        where = f" (line {error.at.line}, column {error.at.column})" if error.at.line else ""
        raise CirrusConfigError(
            f"{FILE_NAME}: the YAML text returned by main(): {error.detail}{where}"
        ) from None
    if node is None or (isinstance(node, Scalar) and node.value is None):
        return Pairs(())
    if not isinstance(node, Pairs):
        raise CirrusConfigError(f"{FILE_NAME}: the YAML text returned by main() is not a mapping")
    return node


def _pairs(value: object) -> Pairs:
    assert isinstance(value, dict)
    return Pairs(tuple((_key(key), _node(item)) for key, item in value.items()))


def _key(key: object) -> str:
    # The original writes a key as Starlark prints it: None, True, 3.
    return key if isinstance(key, str) else str(key)


def _node(value: object) -> Node:
    if isinstance(value, dict):
        return _pairs(value)
    if isinstance(value, list):
        return Sequence(tuple(_node(item) for item in value))
    if value is None:
        return Scalar("null", None)
    if isinstance(value, bool):
        return Scalar("true" if value else "false", value)
    if isinstance(value, int):
        return Scalar(str(value), value)
    if isinstance(value, float):
        text = go_float_text(value)
        return Scalar(text, int(text) if text.lstrip("-").isdigit() else value)
    return Scalar(str(value), str(value))


def go_float_text(number: float) -> str:
    """Return a float as the original's YAML writer prints it (Go's ``%g``, shortest digits)."""
    if math.isnan(number):
        return ".nan"
    if math.isinf(number):
        return ".inf" if number > 0 else "-.inf"
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent
    prefix = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if point >= 1 else '-'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"
