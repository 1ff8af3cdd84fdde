"""Cirrus's condition language (the original's "boolevator"), for ``only_if``, ``skip``,
``allow_failures``, ``auto_cancellation`` and the other boolean task fields.

What an expression means, as the original parser (``pkg/parser/boolevator``, ``bfunc.go`` of
cirrus-cli) reads it:

* Every value is a string; ``true`` and ``false`` are the strings ``"true"``/``"false"``, so
  ``($A == 'x') == 'true'`` holds when ``$A`` is ``x``.
* ``'...'`` and ``"..."`` are literals taken as written: a backslash only keeps the next
  character from ending the literal (``'v\\d+'`` is the regular expression ``v\\d+``), and
  ``$VAR`` inside a literal is not expanded. Quotes around a literal's text are all removed,
  as the original did: ``"'x'"`` is ``x``.
* ``$VAR`` / ``${VAR}`` is the variable's value, itself expanded with ``expand``; an unknown
  variable is ``""``.
* ``==``, ``!=``: string (in)equality. ``=~``, ``!=~``: regular expression between ``^`` and
  the end of the value (a whole match, except that a top-level ``a|b`` is ``^a`` or ``b$``, as
  on Cirrus), always case-insensitive and with ``.`` matching newlines (``(?i)`` is harmless).
  ``a in b``: ``a`` is a substring of ``b``.
* ``!``, ``&&``, ``||`` read their operands as booleans (Go's ``strconv.ParseBool``):
  ``$UNSET && true`` is an error, not false. Both sides are always evaluated (no
  short-circuit), so such an error shows whatever the other side is.
* Precedence, high to low: ``!``; ``in``; ``==`` ``!=`` ``=~`` ``!=~``; ``&&``; ``||``. Binary
  operators group from the left; parentheses group; newlines are spaces; ``//`` and ``/* */``
  are comments.
* ``changesInclude(p, ...)``: some changed file matches one of the glob patterns;
  ``changesIncludeOnly(p, ...)``: there are changed files, and each matches one. Patterns are
  expanded with ``expand``, then read as Java NIO globs (``changes``). When the list of changed
  files is unknown (``None``), both are false, as in cirrus-cli without ``--affected-files``.
* The whole expression must come out ``true`` or ``false`` (read the same way).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.cirrus_config.changes import PatternError, count_matching
from domain.cirrus_config.expand import expand
from domain.cirrus_config.nodes import NOWHERE, CirrusConfigError, Position

# Go's strconv.ParseBool, which the original applies to every operand of ! && || and to the
# result: nothing else (not "yes", not "") is a boolean.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})

_BINARY_PRECEDENCE = {"||": 3, "&&": 4, "==": 8, "!=": 8, "=~": 8, "!=~": 8, "in": 10}
_SYMBOLS = ("!=~", "==", "!=", "=~", "&&", "||", "!", "(", ")", ",")
_WHITESPACE = " \t\r\n"
_NAME = re.compile(r"[^\W\d]\w*")
_FUNCTIONS = frozenset({"changesInclude", "changesIncludeOnly"})


class TokenKind(enum.Enum):
    """What a token of a condition is."""

    LITERAL = "literal"
    VARIABLE = "variable"
    NAME = "name"
    SYMBOL = "symbol"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``text`` is a literal's value, a variable's or name's name, or the symbol;
    ``offset`` is where it starts in the expression (0-based)."""

    kind: TokenKind
    text: str
    offset: int


def evaluate(
    expression: str,
    environment: Mapping[str, str],
    changed_files: Sequence[str] | None = None,
    at: Position = NOWHERE,
) -> bool:
    """Return the value of a Cirrus condition in ``environment``, or raise
    ``CirrusConfigError`` naming the problem and its place in the expression."""
    tokens = tokenize(expression, at)
    return _Evaluation(expression, tokens, environment, changed_files, at).run()


def tokenize(expression: str, at: Position = NOWHERE) -> list[Token]:
    """Split a condition into tokens (ending with an ``END`` token), or raise."""
    tokens: list[Token] = []
    index = 0
    while True:
        index = _skip_blanks(expression, index, at)
        if index >= len(expression):
            tokens.append(Token(TokenKind.END, "", index))
            return tokens
        char = expression[index]
        if char in "'\"":
            end = _literal_end(expression, index, at)
            tokens.append(Token(TokenKind.LITERAL, _unquote(expression[index:end]), index))
            index = end
        elif char == "$":
            token, index = _variable(expression, index, at)
            tokens.append(token)
        elif name := _NAME.match(expression, index):
            tokens.append(Token(TokenKind.NAME, name.group(), index))
            index = name.end()
        else:
            symbol = next((s for s in _SYMBOLS if expression.startswith(s, index)), None)
            if symbol is None:
                raise _error(expression, index, f'unexpected "{char}"', at)
            tokens.append(Token(TokenKind.SYMBOL, symbol, index))
            index += len(symbol)


def _skip_blanks(expression: str, index: int, at: Position) -> int:
    """Return the index of the next character that is neither whitespace nor a comment."""
    while index < len(expression):
        if expression[index] in _WHITESPACE:
            index += 1
        elif expression.startswith("//", index):
            newline = expression.find("\n", index)
            index = len(expression) if newline == -1 else newline + 1
        elif expression.startswith("/*", index):
            close = expression.find("*/", index + 2)
            if close == -1:
                raise _error(expression, index, "a comment is not closed with */", at)
            index = close + 2
        else:
            break
    return index


def _literal_end(expression: str, start: int, at: Position) -> int:
    """Return the index just after the literal that opens at ``start``."""
    quote = expression[start]
    index = start + 1
    while index < len(expression) and expression[index] != "\n":
        char = expression[index]
        if char == quote:
            return index + 1
        index += 2 if char == "\\" else 1
    raise _error(expression, start, f"the string starting with {quote} is not closed", at)


def _unquote(text: str) -> str:
    """Remove every pair of matching quotes around ``text`` (``"'x'"`` reads ``x``)."""
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _variable(expression: str, start: int, at: Position) -> tuple[Token, int]:
    """Read ``$NAME`` or ``${NAME}`` at ``start``; return its token and the next index."""
    braced = expression.startswith("{", start + 1)
    name = _NAME.match(expression, start + 2 if braced else start + 1)
    if name is None:
        raise _error(expression, start, "a variable name must follow $", at)
    end = name.end()
    if braced:
        if not expression.startswith("}", end):
            raise _error(expression, start, "${ is not closed with }", at)
        end += 1
    return Token(TokenKind.VARIABLE, name.group(), start), end


def _error(expression: str, offset: int, problem: str, at: Position) -> CirrusConfigError:
    """Return the error for ``problem`` at ``offset`` of ``expression``."""
    return CirrusConfigError(
        f'invalid condition "{expression.strip()}": {problem} at character {offset + 1}', at
    )


class _Evaluation:
    """Reads the tokens by precedence climbing and computes the value as it goes."""

    def __init__(
        self,
        expression: str,
        tokens: list[Token],
        environment: Mapping[str, str],
        changed_files: Sequence[str] | None,
        at: Position,
    ) -> None:
        self._expression = expression
        self._tokens = tokens
        self._position = 0
        self._environment = environment
        self._changed_files = changed_files
        self._at = at

    def run(self) -> bool:
        """Evaluate the whole expression."""
        first = self._peek()
        if first.kind is TokenKind.END:
            raise _error(self._expression, first.offset, "the condition is empty", self._at)
        value = self._binary(0)
        last = self._peek()
        if last.kind is not TokenKind.END:
            raise self._unexpected(last)
        return self._boolean(value, first, "the result")

    def _peek(self) -> Token:
        return self._tokens[self._position]

    def _take(self) -> Token:
        token = self._tokens[self._position]
        if token.kind is not TokenKind.END:
            self._position += 1
        return token

    def _operator(self) -> str | None:
        """Return the binary operator at the current token, if it is one."""
        token = self._peek()
        if token.kind in (TokenKind.SYMBOL, TokenKind.NAME) and token.text in _BINARY_PRECEDENCE:
            return token.text
        return None

    def _binary(self, minimum: int) -> str:
        left = self._unary()
        while (operator := self._operator()) is not None:
            precedence = _BINARY_PRECEDENCE[operator]
            if precedence < minimum:
                break
            token = self._take()
            right = self._binary(precedence + 1)
            left = self._apply(operator, left, right, token)
        return left

    def _apply(self, operator: str, left: str, right: str, token: Token) -> str:
        if operator == "||":
            result = self._boolean(left, token, "||") | self._boolean(right, token, "||")
        elif operator == "&&":
            result = self._boolean(left, token, "&&") & self._boolean(right, token, "&&")
        elif operator == "==":
            result = left == right
        elif operator == "!=":
            result = left != right
        elif operator == "in":
            result = left in right
        else:
            result = self._matches(left, right, token) == (operator == "=~")
        return _text(result)

    def _unary(self) -> str:
        token = self._take()
        if token.kind is TokenKind.LITERAL:
            return token.text
        if token.kind is TokenKind.VARIABLE:
            # As the original: a value is expanded with the other variables before it is used.
            return expand(self._environment.get(token.text, ""), self._environment)
        if token.kind is TokenKind.NAME:
            return self._name(token)
        if token.text == "!":
            return _text(not self._boolean(self._unary(), token, "!"))
        if token.text == "(":
            value = self._binary(0)
            closing = self._take()
            if not _is_symbol(closing, ")"):
                raise self._unexpected(closing, "a ( is not closed")
            return value
        raise self._unexpected(token)

    def _name(self, token: Token) -> str:
        if token.text in ("true", "false"):
            return token.text
        if token.text not in _FUNCTIONS:
            if _is_symbol(self._peek(), "("):
                raise self._fail(token, f"unknown function {token.text}()")
            raise self._fail(token, f"unknown name {token.text} (a variable is ${token.text})")
        opening = self._take()
        if not _is_symbol(opening, "("):
            raise self._unexpected(opening, f"expected ( after {token.text}")
        arguments = self._arguments()
        if not arguments:
            raise self._fail(token, f"{token.text}() needs at least one pattern")
        patterns = [expand(argument, self._environment) for argument in arguments]
        files = self._changed_files or ()
        try:
            count = count_matching(files, patterns)
        except PatternError as error:
            raise self._fail(token, f"{token.text}(): {error}") from None
        if token.text == "changesInclude":
            return _text(count > 0)
        return _text(0 < count == len(files))

    def _arguments(self) -> list[str]:
        arguments: list[str] = []
        if _is_symbol(self._peek(), ")"):
            self._take()
            return arguments
        while True:
            arguments.append(self._binary(0))
            separator = self._take()
            if _is_symbol(separator, ")"):
                return arguments
            if not _is_symbol(separator, ","):
                raise self._unexpected(separator, "expected , or )")

    def _matches(self, text: str, pattern: str, token: Token) -> bool:
        try:
            compiled = re.compile(_anchored(pattern), re.IGNORECASE | re.DOTALL)
        except re.error as error:
            raise self._fail(token, f"bad regular expression '{pattern}': {error}") from None
        return compiled.search(text) is not None

    def _boolean(self, value: str, token: Token, what: str) -> bool:
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise self._fail(token, f'{what} needs true or false, not "{value}"')

    def _fail(self, token: Token, problem: str) -> CirrusConfigError:
        return _error(self._expression, token.offset, problem, self._at)

    def _unexpected(self, token: Token, expected: str = "") -> CirrusConfigError:
        seen = "end of the condition" if token.kind is TokenKind.END else f'"{token.text}"'
        if token.kind is TokenKind.LITERAL:
            seen = f"the string '{token.text}'"
        elif token.kind is TokenKind.VARIABLE:
            seen = f"${token.text}"
        suffix = f" ({expected})" if expected else ""
        return self._fail(token, f"unexpected {seen}{suffix}")


_LEADING_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")


def _anchored(pattern: str) -> str:
    """Return ``pattern`` between ``^`` and the end of the text, as the original wraps it.

    The original does not group the pattern: ``main|master`` is ``^main`` or ``master$``, and
    ``mainline`` matches it. Leading inline flags (``(?i)``), which Go takes anywhere but
    Python only first, are moved before the ``^``.
    """
    flags = ""
    while match := _LEADING_FLAGS.match(pattern):
        flags += match.group(1)
        pattern = pattern[match.end() :]
    prefix = f"(?{flags})" if flags else ""
    # \Z, not $: Go's $ matches only at the very end, Python's also before a final newline.
    return f"{prefix}^{pattern}\\Z"


def _is_symbol(token: Token, symbol: str) -> bool:
    return token.kind is TokenKind.SYMBOL and token.text == symbol


def _text(value: bool) -> str:
    return "true" if value else "false"
