"""Go's ``%q`` quoting (``strconv.Quote``), used in the policy messages the server receives."""

from __future__ import annotations

_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def _escape(char: str) -> str:
    """Return the Go escape of one character inside a double-quoted literal."""
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    # Go's unicode.IsPrint and Python's str.isprintable agree: letters, marks, numbers,
    # punctuation, symbols and the ASCII space are printable; other characters are escaped.
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate cannot come from valid UTF-8; Go would see its bytes one by one.
        return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """Return ``text`` as Go's ``strconv.Quote`` (and ``fmt`` ``%q``) writes it."""
    return '"' + "".join(_escape(char) for char in text) + '"'
