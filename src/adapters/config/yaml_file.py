"""Reading YAML strictly: a duplicate key is an error, and errors name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

from domain.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (the later would win)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, failing on a duplicate key."""
        seen: set[object] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> object:
    """Return the document in ``text``; ``source`` names it in errors (a file path)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = error.problem or error.context or "malformed YAML"
        raise ConfigError(source, f"invalid YAML at {where}: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(source, f"invalid YAML: {error}") from None


def read_yaml_file(path: str) -> object:
    """Return the document of a YAML file; an unreadable file is a ``--file`` error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None
    except OSError as error:
        raise ConfigError("--file", f"cannot read {path}: {error.strerror or error}") from None
    return parse_yaml(text, path)
