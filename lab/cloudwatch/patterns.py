"""CloudWatch filter patterns (FilterLogEvents' ``filterPattern``), the common forms.

Supported: terms and ``"quoted phrases"`` (all must appear, case-sensitive), ``?term`` (at
least one of them), ``-term`` (must not appear), ``%regex%``, and JSON patterns
``{ $.a.b = "x" && $.n > 5 || ... }`` with ``= != < <= > >=``, ``*`` wildcards in strings,
``IS NULL``/``NOT EXISTS``/``EXISTS`` and parentheses. Space-delimited ``[a, b]`` patterns
are refused with a clear error rather than matched wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A filter pattern the lab cannot read (InvalidParameterException)."""


def compile_pattern(pattern: str | None) -> Matcher:
    """A predicate on an event's message for ``pattern`` (everything matches an empty one)."""
    text = (pattern or "").strip()
    if not text:
        return lambda message: True
    if text.startswith("{"):
        return _json_pattern(text)
    if text.startswith("["):
        raise PatternError("space-delimited [ ... ] filter patterns are not supported by the lab")
    return _term_pattern(text)


_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|%([^%]+)%|(\S+))')


def _term_pattern(text: str) -> Matcher:
    required: list[Matcher] = []
    optional: list[Matcher] = []
    excluded: list[Matcher] = []
    for match in _TERM.finditer(text):
        sign, phrase, regex, word = match.groups()
        if regex is not None:
            try:
                compiled = re.compile(regex)
            except re.error as e:
                raise PatternError(f"invalid regex %{regex}%: {e}") from None
            test = _regex_test(compiled)
        else:
            test = _substring_test(phrase.replace('\\"', '"') if phrase is not None else word)
        {"": required, "?": optional, "-": excluded}[sign].append(test)

    def matches(message: str) -> bool:
        return (
            all(t(message) for t in required)
            and (not optional or any(t(message) for t in optional))
            and not any(t(message) for t in excluded)
        )

    return matches


def _regex_test(pattern: re.Pattern[str]) -> Matcher:
    return lambda message: pattern.search(message) is not None


def _substring_test(needle: str) -> Matcher:
    return lambda message: needle in message


_JSON_TOKEN = re.compile(
    r"\s*(?:(?P<sel>\$(?:\.[A-Za-z0-9_@-]+|\[\d+\])*)|(?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\)|\{|\})"
    r'|"(?P<str>(?:[^"\\]|\\.)*)"|(?P<word>[^\s()&|=!<>{}"]+))'
)


def _json_pattern(text: str) -> Matcher:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _JSON_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip():
                raise PatternError(f"unexpected {text[pos : pos + 10]!r} in filter pattern")
            break
        kind = match.lastgroup or "op"
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    if not tokens or tokens[0] != ("op", "{") or tokens[-1] != ("op", "}"):
        raise PatternError("a JSON filter pattern is { $.field = value }")
    reader = _JsonReader(tokens[1:-1])
    condition = reader.disjunction()
    if reader.i != len(reader.tokens):
        raise PatternError("unexpected text after the condition in the filter pattern")

    def matches(message: str) -> bool:
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return isinstance(document, dict | list) and condition(document)

    return matches


Condition = Callable[[Any], bool]
_MISSING = object()


class _JsonReader:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.i += 1
        return token

    def disjunction(self) -> Condition:
        parts = [self.conjunction()]
        while self.peek() == ("op", "||"):
            self.i += 1
            parts.append(self.conjunction())
        return lambda doc: any(p(doc) for p in parts)

    def conjunction(self) -> Condition:
        parts = [self.atom()]
        while self.peek() == ("op", "&&"):
            self.i += 1
            parts.append(self.atom())
        return lambda doc: all(p(doc) for p in parts)

    def atom(self) -> Condition:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.disjunction()
            if self.take() != ("op", ")"):
                raise PatternError("missing ) in filter pattern")
            return inner
        if kind != "sel":
            raise PatternError(f"expected a $.selector in filter pattern, found {value!r}")
        path = re.findall(r"\.([^.\[]+)|\[(\d+)\]", value)
        following = self.peek()
        if following[0] == "word" and following[1].upper() in ("IS", "NOT", "EXISTS"):
            return self.presence(path)
        op_kind, op = self.take()
        if op_kind != "op" or op not in ("=", "!=", "<", "<=", ">", ">="):
            raise PatternError(f"expected a comparison after {value}")
        operand_kind, operand = self.take()
        if operand_kind not in ("str", "word"):
            raise PatternError(f"expected a value after {value} {op}")
        return lambda doc: _compare(_select(doc, path), op, operand, operand_kind == "str")

    def presence(self, path: list[tuple[str, str]]) -> Condition:
        words = []
        while self.peek()[0] == "word" and self.peek()[1].upper() in (
            "IS",
            "NOT",
            "EXISTS",
            "NULL",
        ):
            words.append(self.take()[1].upper())
        phrase = " ".join(words)
        if phrase == "IS NULL":
            return lambda doc: _select(doc, path) is None
        if phrase == "NOT EXISTS":
            return lambda doc: _select(doc, path) is _MISSING
        if phrase == "EXISTS":
            return lambda doc: _select(doc, path) is not _MISSING
        raise PatternError(f"unknown test {phrase!r} in filter pattern")


def _select(document: Any, path: list[tuple[str, str]]) -> Any:
    node = document
    for key, index in path:
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return _MISSING
            node = node[int(index)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return _MISSING
    return node


def _compare(value: Any, op: str, operand: str, quoted: bool) -> bool:
    if value is _MISSING or isinstance(value, dict | list):
        return False
    if not quoted and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(operand)
        except ValueError:
            return False
        return {
            "=": value == number,
            "!=": value != number,
            "<": value < number,
            "<=": value <= number,
            ">": value > number,
            ">=": value >= number,
        }[op]
    if op not in ("=", "!="):
        return False
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    wildcard = re.compile("".join(".*" if c == "*" else re.escape(c) for c in operand) + r"\Z")
    return (wildcard.match(text) is not None) == (op == "=")
