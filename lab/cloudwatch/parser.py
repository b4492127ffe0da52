"""Query text to ``syntax.Query``: commands joined by ``|``, expressions by precedence.

Every problem is a ``lexer.MalformedQueryError`` naming the symbol, its line and position,
as AWS's MalformedQueryException does. Commands, keywords and function names are
case-insensitive; field names are not.
"""

from __future__ import annotations

import re

from lab.cloudwatch import functions, lexer, syntax, values
from lab.cloudwatch.lexer import Token

KEYWORDS = ("and", "or", "not", "like", "in", "as", "by", "asc", "desc")
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


def parse(text: str) -> syntax.Query:
    """The query ``text`` as commands; raises ``lexer.MalformedQueryError``."""
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = lexer.tokenize(text)
        self.i = 0
        self.aggregates_allowed = False

    # --- token helpers ---------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.i += 1
        return token

    def at_op(self, *ops: str) -> bool:
        return self.peek().kind == "op" and self.peek().value in ops

    def accept_op(self, op: str) -> bool:
        if self.at_op(op):
            self.i += 1
            return True
        return False

    def accept_word(self, *words: str) -> Token | None:
        if self.peek().is_word(*words):
            return self.take()
        return None

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            raise self.error()
        return self.take()

    def error(self, token: Token | None = None, message: str | None = None) -> Exception:
        token = token or self.peek()
        error = lexer.error_at(self.text, token.start, token.end)
        if message:
            error = lexer.MalformedQueryError(
                f"{message} ({error.message.removeprefix('unexpected symbol found ')})",
                start=error.start,
                end=error.end,
            )
        return error

    def field_name(self) -> str:
        token = self.peek()
        if token.kind != "ident" or (not token.quoted and token.value.lower() in KEYWORDS):
            raise self.error()
        self.i += 1
        return token.value

    def source(self, start: int) -> str:
        """The query text of tokens ``start`` .. the last one taken."""
        return self.text[self.tokens[start].start : self.tokens[self.i - 1].end]

    # --- commands --------------------------------------------------------------------------
    def query(self) -> syntax.Query:
        if self.peek().kind == "end":
            raise lexer.MalformedQueryError("the query is empty", start=0, end=0)
        commands = [self.command()]
        while self.accept_op("|"):
            commands.append(self.command())
        if self.peek().kind != "end":
            raise self.error()
        return syntax.Query(tuple(commands), text=self.text)

    def command(self) -> syntax.Command:  # noqa: PLR0911 - one return per command
        word = self.peek()
        if word.kind != "ident" or word.quoted:
            raise self.error()
        self.i += 1
        name = word.value.lower()
        if name == "fields":
            return syntax.Fields(self.named_list(aggregates=False))
        if name == "display":
            return syntax.Display(tuple(self.name_list()))
        if name == "filter":
            return syntax.Filter(self.expression(aggregates=False))
        if name == "stats":
            return self.stats()
        if name == "sort":
            return self.sort()
        if name == "limit":
            count = self.take()
            if count.kind != "number" or not count.value.isdigit() or int(count.value) < 1:
                raise self.error(count)
            return syntax.Limit(int(count.value))
        if name == "parse":
            return self.parse_command()
        if name == "dedup":
            return syntax.Dedup(tuple(self.name_list()))
        raise self.error(word)

    def name_list(self) -> list[str]:
        names = [self.field_name()]
        while self.accept_op(","):
            names.append(self.field_name())
        return names

    def named_list(self, *, aggregates: bool) -> tuple[syntax.Named, ...]:
        items = [self.named(aggregates=aggregates)]
        while self.accept_op(","):
            items.append(self.named(aggregates=aggregates))
        return tuple(items)

    def named(self, *, aggregates: bool) -> syntax.Named:
        start = self.i
        expr = self.expression(aggregates=aggregates)
        name = self.source(start)
        if self.accept_word("as"):
            name = self.field_name()
        elif isinstance(expr, syntax.FieldRef):
            name = expr.name
        return syntax.Named(name, expr)

    def stats(self) -> syntax.Stats:
        first = self.peek()
        aggregates = self.named_list(aggregates=True)
        for item in aggregates:
            if not _has_aggregate(item.expr):
                raise self.error(first, "stats needs an aggregate function")
        by: tuple[syntax.Named, ...] = ()
        if self.accept_word("by"):
            by = self.named_list(aggregates=False)
        return syntax.Stats(aggregates, by)

    def sort(self) -> syntax.Sort:
        keys = []
        while True:
            name = self.field_name()
            direction = self.accept_word("asc", "desc")
            # AWS does not document a default; descending is what its examples mean
            keys.append(syntax.SortKey(name, direction is None or direction.is_word("desc")))
            if not self.accept_op(","):
                return syntax.Sort(tuple(keys))

    def parse_command(self) -> syntax.Parse:
        source = "@message"
        if self.peek().kind == "ident":
            source = self.field_name()
        token = self.take()
        if token.kind == "string":
            pattern = _glob(token.value)
        elif token.kind == "regex":
            pattern = self.regex(token)
        else:
            raise self.error(token)
        if self.accept_word("as"):
            names = self.name_list()
            if len(names) != pattern.groups:
                raise self.error(
                    token, f"the pattern captures {pattern.groups} values for {len(names)} fields"
                )
            return syntax.Parse(source, pattern, tuple(names), tuple(range(1, len(names) + 1)))
        named = sorted(pattern.groupindex.items(), key=lambda item: item[1])
        if token.kind == "string" or not named:
            raise self.error(token, "parse needs `as` fields or named groups (?<name>...)")
        return syntax.Parse(source, pattern, tuple(n for n, _ in named), tuple(i for _, i in named))

    def regex(self, token: Token) -> re.Pattern[str]:
        # AWS writes named groups Java-style, (?<name>…); Python wants (?P<name>…)
        text = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", token.value)
        try:
            return re.compile(text)
        except re.error as e:
            raise self.error(token, f"invalid regular expression: {e}") from None

    # --- expressions -----------------------------------------------------------------------
    def expression(self, *, aggregates: bool) -> syntax.Expr:
        self.aggregates_allowed = aggregates
        return self.or_expr()

    def or_expr(self) -> syntax.Expr:
        left = self.and_expr()
        while self.accept_word("or"):
            left = syntax.Binary("or", left, self.and_expr())
        return left

    def and_expr(self) -> syntax.Expr:
        left = self.not_expr()
        while self.accept_word("and"):
            left = syntax.Binary("and", left, self.not_expr())
        return left

    def not_expr(self) -> syntax.Expr:
        if self.accept_word("not"):
            return syntax.Unary("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> syntax.Expr:
        left = self.additive()
        if self.at_op(*COMPARISONS):
            op = self.take().value
            return syntax.Binary(op, left, self.additive())
        negate = bool(self.peek().is_word("not") and self.peek(1).is_word("like", "in"))
        if negate:
            self.i += 1
        if self.accept_word("like"):
            token = self.take()
            if token.kind == "regex":
                return syntax.Like(left, self.regex(token), negate)
            if token.kind == "string":
                return syntax.Like(left, token.value, negate)
            raise self.error(token)
        if self.accept_word("in"):
            self.expect_op("[")
            items = [self.additive()]
            while self.accept_op(","):
                items.append(self.additive())
            self.expect_op("]")
            return syntax.In(left, tuple(items), negate)
        if negate:
            raise self.error()
        if self.accept_op("=~"):
            token = self.take()
            if token.kind != "regex":
                raise self.error(token)
            return syntax.Like(left, self.regex(token))
        return left

    def additive(self) -> syntax.Expr:
        left = self.multiplicative()
        while self.at_op("+", "-"):
            op = self.take().value
            left = syntax.Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> syntax.Expr:
        left = self.unary()
        while self.at_op("*", "/", "%"):
            op = self.take().value
            left = syntax.Binary(op, left, self.unary())
        return left

    def unary(self) -> syntax.Expr:
        if self.accept_op("-"):
            return syntax.Unary("-", self.unary())
        base = self.primary()
        if self.accept_op("^"):
            return syntax.Binary("^", base, self.unary())
        return base

    def primary(self) -> syntax.Expr:
        token = self.peek()
        if token.kind == "number":
            self.i += 1
            number = float(token.value)
            return syntax.Const(int(number) if "." not in token.value else number)
        if token.kind == "string":
            self.i += 1
            return syntax.Const(token.value)
        if token.kind == "duration":
            self.i += 1
            period = values.parse_period(token.value)
            if period is None:
                raise self.error(token, "unknown time unit")
            return syntax.PeriodLit(period)
        if self.accept_op("("):
            inner = self.or_expr()
            self.expect_op(")")
            return inner
        following = self.peek(1)
        if token.kind == "ident" and not token.quoted and following.text == "(":
            return self.call()
        return syntax.FieldRef(self.field_name())

    def call(self) -> syntax.Expr:
        token = self.take()
        name = token.value.lower()
        self.expect_op("(")
        args: list[syntax.Expr] = []
        star = False
        if name == "count" and self.accept_op("*"):
            star = True
        elif not self.at_op(")"):
            allowed = self.aggregates_allowed
            self.aggregates_allowed = False  # no aggregate inside an aggregate's arguments
            args.append(self.or_expr())
            while self.accept_op(","):
                args.append(self.or_expr())
            self.aggregates_allowed = allowed
        self.expect_op(")")
        if name == "bin":
            if len(args) != 1 or not isinstance(args[0], syntax.PeriodLit):
                raise self.error(token, "bin takes one period, like bin(5m)")
            return syntax.Call("datefloor", (syntax.FieldRef("@timestamp"), args[0]))
        if name in functions.AGGREGATES:
            if not self.aggregates_allowed:
                raise self.error(token, f"{name} aggregates: only in stats, not nested")
            least, most = functions.AGGREGATES[name]
            if name == "count" and not args:
                star = True
            if not star and not least <= len(args) <= most:
                raise self.error(token, f"{name} takes {least} to {most} arguments")
            if name == "pct" and not _percent(args[1]):
                raise self.error(token, "pct takes a field and a percentile from 0 to 100")
            return syntax.Call(name, tuple(args), star)
        if name not in functions.SCALAR:
            raise self.error(token, f"unknown function {token.value}")
        least, most, _ = functions.SCALAR[name]
        if not least <= len(args) <= most:
            raise self.error(token, f"{name} takes {least} to {most} arguments")
        return syntax.Call(name, tuple(args))


def _percent(expr: syntax.Expr) -> bool:
    return (
        isinstance(expr, syntax.Const)
        and isinstance(expr.value, int | float)
        and 0 <= expr.value <= 100
    )


def _has_aggregate(expr: syntax.Expr) -> bool:
    if isinstance(expr, syntax.Call):
        return expr.name in functions.AGGREGATES or any(_has_aggregate(a) for a in expr.args)
    if isinstance(expr, syntax.Binary):
        return _has_aggregate(expr.left) or _has_aggregate(expr.right)
    if isinstance(expr, syntax.Unary):
        return _has_aggregate(expr.operand)
    return False


def _glob(pattern: str) -> re.Pattern[str]:
    """``"* [*] *"`` as a regex: each ``*`` a lazy capture, a trailing one greedy."""
    parts = pattern.split("*")
    body = "(.*?)".join(re.escape(p) for p in parts)
    if pattern.endswith("*"):
        body = body[: -len("(.*?)")] + "(.*)"
    return re.compile(body, re.DOTALL)
