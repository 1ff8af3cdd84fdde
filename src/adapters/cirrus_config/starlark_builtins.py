"""The ``cirrus`` Starlark module: ``load("cirrus", "env", "fs", "yaml", "re", "hash", "http")``.

Its surface follows the original's (cirrus-cli ``pkg/larker/loader`` with the qri-io starlib
modules): ``fs.read/exists/isdir/readdir``, ``yaml.loads/dumps``, ``json.loads/dumps``,
``re.match/search/findall/split/sub/compile``, ``hash.md5/sha1/sha256``,
``base64.encode/decode``, ``http.get/post/put/patch/delete/options`` (a response has
``url``, ``status_code``, ``headers``, ``encoding``, ``body()`` and ``json()``) and ``is_test``.
The Python functions below do the work; ``MODULE_SOURCE`` (Starlark) shapes them into that
surface, with ``changes_include(*patterns)`` and ``changes_include_only(*patterns)`` over
the build's changed files (none when unknown, as the original's). ``zipfile`` is not provided.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import yaml

from domain.cirrus_config.changes import PatternError, count_matching
from domain.cirrus_config.limits import DEFAULT_MAX_NODES
from domain.cirrus_config.parsing import SourceFiles

_HTTP_TIMEOUT_SECONDS = 30.0
_GO_TEMPLATE = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")
_BASE64 = {
    "standard": (base64.b64encode, base64.b64decode, True),
    "standard_raw": (base64.b64encode, base64.b64decode, False),
    "url": (base64.urlsafe_b64encode, base64.urlsafe_b64decode, True),
    "url_raw": (base64.urlsafe_b64encode, base64.urlsafe_b64decode, False),
}


class StarlarkCallError(Exception):
    """A ``cirrus`` module function refused its call; the message says why."""


# Evaluated first, so that ``MODULE_SOURCE`` can rebind the name ``json``.
JSON_SOURCE = """
_json_decode = json.decode
_json_encode = json.encode
"""

MODULE_SOURCE = """
is_test = False

def changes_include(*patterns):
    return _changes(list(patterns), False)

def changes_include_only(*patterns):
    return _changes(list(patterns), True)

def _exists(path):
    return _fs_read(path) != None or _fs_list(path) != None

fs = struct(
    read = _fs_read,
    readdir = _fs_list,
    exists = _exists,
    isdir = lambda path: _fs_list(path) != None,
)

yaml = struct(loads = _yaml_loads, dumps = _yaml_dumps)
json = struct(loads = _json_decode, dumps = _json_encode)

def _re_of(pattern):
    return struct(
        pattern = pattern,
        match = lambda string, flags = 0: _re_match(pattern, string),
        search = lambda string, flags = 0: _re_search(pattern, string),
        findall = lambda string, flags = 0: _re_findall(pattern, string),
        split = lambda string, maxsplit = 0, flags = 0: _re_split(pattern, string, maxsplit),
        sub = lambda repl, string, count = 0, flags = 0: _re_sub(pattern, repl, string),
    )

def _compile(pattern, flags = 0):
    _re_findall(pattern, "")
    return _re_of(pattern)

re = struct(
    compile = _compile,
    match = lambda pattern, string, flags = 0: _re_match(pattern, string),
    search = lambda pattern, string, flags = 0: _re_search(pattern, string),
    findall = lambda pattern, string, flags = 0: _re_findall(pattern, string),
    split = lambda pattern, string, maxsplit = 0, flags = 0: _re_split(pattern, string, maxsplit),
    sub = lambda pattern, repl, string, count = 0, flags = 0: _re_sub(pattern, repl, string),
)

hash = struct(
    md5 = lambda data: _hash("md5", data),
    sha1 = lambda data: _hash("sha1", data),
    sha256 = lambda data: _hash("sha256", data),
)

base64 = struct(
    encode = lambda data, encoding = "standard": _base64("encode", data, encoding),
    decode = lambda data, encoding = "standard": _base64("decode", data, encoding),
)

def _response(r):
    return struct(
        url = r["url"],
        status_code = r["status_code"],
        headers = r["headers"],
        encoding = r["encoding"],
        body = lambda: r["body"],
        json = lambda: _json_decode(r["body"]),
    )

def _method(name):
    def request(url, params = {}, headers = {}, body = "", form_body = {}, form_encoding = "",
                json_body = None, auth = ()):
        return _response(_http(name, url, params, headers, body, form_body, form_encoding,
                               json_body, auth))
    return request

http = struct(
    get = _method("get"),
    post = _method("post"),
    put = _method("put"),
    patch = _method("patch"),
    delete = _method("delete"),
    options = _method("options"),
)
"""


def cirrus_callables(
    files: SourceFiles, allow_http: bool, changed_files: Sequence[str]
) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Yield the Python functions ``MODULE_SOURCE`` calls, by the names it calls them."""

    def changes(patterns: list[object], only: bool) -> bool:
        name = "changes_include_only" if only else "changes_include"
        if not patterns or not all(isinstance(pattern, str) for pattern in patterns):
            raise StarlarkCallError(f"{name}() takes one or more string patterns")
        try:
            count = count_matching(changed_files, [str(pattern) for pattern in patterns])
        except PatternError as error:
            raise StarlarkCallError(f"{name}(): {error}") from None
        return count > 0 and (not only or count == len(changed_files))

    def fs_read(path: str) -> str | None:
        data = files.read(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def fs_list(path: str) -> list[str] | None:
        return files.list(path)

    def http_request(method: str, url: str, *rest: Any) -> dict[str, object]:
        if not allow_http:
            raise StarlarkCallError(
                f"http.{method} is not allowed: this controller's configuration does not "
                "allow HTTP requests from .cirrus.star"
            )
        return _http(method, url, *rest)

    yield "_changes", changes
    yield "_fs_read", fs_read
    yield "_fs_list", fs_list
    yield "_http", http_request
    yield "_yaml_loads", _yaml_loads
    yield "_yaml_dumps", _yaml_dumps
    yield "_re_match", _re_match
    yield "_re_search", _re_search
    yield "_re_findall", _re_findall
    yield "_re_split", _re_split
    yield "_re_sub", _re_sub
    yield "_hash", _hash
    yield "_base64", _base64


def _yaml_loads(source: str) -> object:
    try:
        return _plain(yaml.safe_load(source), [DEFAULT_MAX_NODES])
    except yaml.YAMLError as error:
        raise StarlarkCallError(f"yaml.loads: {' '.join(str(error).split())}") from None


def _plain(value: object, budget: list[int]) -> object:
    # Values cross into Starlark as JSON: dates and the like become their text. Copying
    # expands aliases, so a few nested ones (an "alias bomb") would copy without end: the
    # copy is bounded like the controller's own YAML reader.
    budget[0] -= 1
    if budget[0] < 0:
        raise StarlarkCallError(
            f"yaml.loads: more than {DEFAULT_MAX_NODES} values once aliases are expanded"
        )
    if isinstance(value, dict):
        return {
            str(key) if not isinstance(key, str) else key: _plain(v, budget)
            for key, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(item, budget) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _yaml_dumps(source: object) -> str:
    # The original's Go YAML writer sorts map keys.
    return yaml.safe_dump(source, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise StarlarkCallError(f"re: bad pattern {pattern!r}: {error}") from None


def _re_match(pattern: str, string: str) -> list[list[str]]:
    # As the original: every match, each as the whole match followed by its groups.
    return [
        [found[0], *(group or "" for group in found.groups())]
        for found in _regex(pattern).finditer(string)
    ]


def _re_search(pattern: str, string: str) -> list[int] | None:
    found = _regex(pattern).search(string)
    return None if found is None else [found.start(), found.end()]


def _re_findall(pattern: str, string: str) -> list[str]:
    return [found[0] for found in _regex(pattern).finditer(string)]


def _re_split(pattern: str, string: str, maxsplit: int) -> list[str]:
    regex = _regex(pattern)
    # Go's Split(s, n): at most n pieces (0: all); it keeps no groups.
    pieces: list[str] = []
    start = 0
    for found in regex.finditer(string):
        if maxsplit and len(pieces) == maxsplit - 1:
            break
        pieces.append(string[start : found.start()])
        start = found.end()
    pieces.append(string[start:])
    return pieces


def _re_sub(pattern: str, repl: str, string: str) -> str:
    regex = _regex(pattern)

    def expand(found: re.Match[str]) -> str:
        # Go's template: $1, ${1}, $name, ${name}; $$ is a dollar; an unknown group is empty.
        def group(ref: re.Match[str]) -> str:
            if ref[1]:
                return "$"
            name = ref[2] or ref[3]
            try:
                return found[int(name) if name.isdigit() else name] or ""
            except IndexError:  # no such group
                return ""

        return _GO_TEMPLATE.sub(group, repl)

    return regex.sub(expand, string)


def _hash(algorithm: str, data: str) -> str:
    return hashlib.new(algorithm, data.encode(), usedforsecurity=False).hexdigest()


def _base64(direction: str, data: str, encoding: str) -> str:
    if encoding not in _BASE64:
        raise StarlarkCallError(f"base64.{direction}: unsupported encoding {encoding!r}")
    encode, decode, padded = _BASE64[encoding]
    if direction == "encode":
        text = encode(data.encode()).decode("ascii")
        return text if padded else text.rstrip("=")
    try:
        return decode(data + "=" * (-len(data) % 4)).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError) as error:
        raise StarlarkCallError(f"base64.decode: {error}") from None


def _http(
    method: str,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    body: str,
    form_body: dict[str, str],
    form_encoding: str,
    json_body: object,
    auth: list[str],
) -> dict[str, object]:
    request: dict[str, Any] = {"params": params, "headers": headers}
    if body:
        request["content"] = body
    elif form_body and form_encoding == "multipart/form-data":
        request["files"] = {key: (None, value) for key, value in form_body.items()}
    elif form_body:
        request["data"] = form_body
    elif json_body is not None:
        request["json"] = json_body
    if auth:
        if len(auth) != 2:
            raise StarlarkCallError(f"http.{method}: auth must be (username, password)")
        request["auth"] = (auth[0], auth[1])
    try:
        with httpx.Client(timeout=_HTTP_TIMEOUT_SECONDS, follow_redirects=True) as client:
            response = client.request(method.upper(), url, **request)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise StarlarkCallError(f"http.{method} {url}: {error}") from None
    return {
        "url": str(response.url),
        "status_code": response.status_code,
        # Keys as Go's net/http writes them: Content-Type, X-Request-Id.
        "headers": {
            "-".join(part.capitalize() for part in key.split("-")): ",".join(
                response.headers.get_list(key)
            )
            for key in response.headers
        },
        "encoding": response.headers.get("transfer-encoding", ""),
        "body": response.content.decode("utf-8", errors="replace"),
    }
