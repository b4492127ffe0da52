"""Logs Insights query text as tokens, with each token's place for MalformedQueryException.

A ``/`` starts a regex literal where a value is expected (after ``like``, ``=~``, ``parse``
and its field, an opening bracket or a comma) and is division elsewhere. ``#`` starts a
comment outside strings and regexes. ``5m``-style numbers with a unit are duration tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["ident", "string", "regex", "number", "duration", "op", "end"]


class MalformedQueryError(ValueError):
    """A query the language does not accept; ``start``/``end`` are character offsets."""

    def __init__(self, message: str, *, start: int, end: int) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    """The token as written (for strings and regexes: the quoted form)."""
    value: str
    """Strings and regexes unquoted; identifiers without backticks; otherwise as written."""
    start: int
    end: int
    quoted: bool = False
    """An identifier written in backticks: never a keyword."""

    def is_word(self, *words: str) -> bool:
        """Whether this is an unquoted identifier equal (case-insensitively) to one of words."""
        return self.kind == "ident" and not self.quoted and self.value.lower() in words


_OPERATORS = ("=~", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", "^")
_PUNCTUATION = "|,()[]"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNIT = re.compile(r"[A-Za-z]+")
_IDENT = re.compile(r"@?[A-Za-z_][A-Za-z0-9_.@]*")
_REGEX_AFTER_WORDS = ("like", "parse")
_REGEX_AFTER_OPS = ("=~", "(", ",", "[", "|", "=", "!=")


def error_at(query: str, start: int, end: int, found: str | None = None) -> MalformedQueryError:
    """The error AWS gives for an unexpected symbol, with line and position (1-based)."""
    line = query.count("\n", 0, start) + 1
    column = start - (query.rfind("\n", 0, start) + 1) + 1
    symbol = found if found is not None else (query[start:end] or "end of query")
    return MalformedQueryError(
        f"unexpected symbol found {symbol} at line {line} and position {column}",
        start=start,
        end=max(start, end - 1),
    )


def tokenize(query: str) -> list[Token]:
    """Every token of ``query``, ending with an ``end`` token."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c == "#":
            newline = query.find("\n", i)
            i = n if newline < 0 else newline
        elif c in "\"'":
            token = _quoted(query, i, c, "string")
            tokens.append(token)
            i = token.end
        elif c == "`":
            close = query.find("`", i + 1)
            if close < 0:
                raise error_at(query, i, n, "unterminated `")
            tokens.append(
                Token("ident", query[i : close + 1], query[i + 1 : close], i, close + 1, True)
            )
            i = close + 1
        elif c == "/" and _regex_expected(tokens):
            token = _quoted(query, i, "/", "regex")
            tokens.append(token)
            i = token.end
        elif c.isdigit():
            number = _NUMBER.match(query, i)
            assert number is not None
            unit = _UNIT.match(query, number.end())
            end = unit.end() if unit else number.end()
            kind: TokenKind = "duration" if unit else "number"
            tokens.append(Token(kind, query[i:end], query[i:end], i, end))
            i = end
        elif c in _PUNCTUATION:
            tokens.append(Token("op", c, c, i, i + 1))
            i += 1
        elif ident := _IDENT.match(query, i):
            tokens.append(Token("ident", ident.group(), ident.group(), i, ident.end()))
            i = ident.end()
        else:
            op = next((o for o in _OPERATORS if query.startswith(o, i)), None)
            if op is None:
                raise error_at(query, i, i + 1)
            tokens.append(Token("op", op, op, i, i + len(op)))
            i += len(op)
    tokens.append(Token("end", "", "", n, n))
    return tokens


def _regex_expected(tokens: list[Token]) -> bool:
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind == "op":
        return last.value in _REGEX_AFTER_OPS
    if last.is_word(*_REGEX_AFTER_WORDS):
        return True
    # `parse @message /re/`: the field follows the command word
    return last.kind == "ident" and len(tokens) >= 2 and tokens[-2].is_word("parse")


def _quoted(query: str, start: int, quote: str, kind: TokenKind) -> Token:
    """A string or regex from its opening quote; a backslash escapes the quote."""
    out: list[str] = []
    i = start + 1
    while i < len(query):
        c = query[i]
        if c == "\\" and i + 1 < len(query):
            following = query[i + 1]
            if following == quote:
                out.append(following)
            elif kind == "string":
                out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(following, "\\" + following))
            else:  # a regex keeps its escapes for the regex engine
                out.append(c + following)
            i += 2
            continue
        if c == quote:
            return Token(kind, query[start : i + 1], "".join(out), start, i + 1)
        out.append(c)
        i += 1
    raise error_at(query, start, len(query), f"unterminated {quote}")
