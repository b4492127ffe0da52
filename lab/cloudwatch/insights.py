"""Logs Insights queries over log events, answered with AWS's semantics.

``run(query, events)`` parses the query (``parser``), turns each event into its fields (the
``@`` system fields plus JSON fields flattened as ``a.b`` and ``a.0``), runs the commands in
order and returns rows shaped as GetQueryResults sends them. Choices where AWS documents
nothing, kept in one place here:

- Events enter newest first, so a query without ``sort`` lists the latest events first, and
  ``stats`` groups come out in the order their newest event appears.
- ``sort f`` without a direction sorts descending (``parser``); missing values sort last.
- Without ``fields``/``display`` a row shows ``@timestamp`` and ``@message`` (the console's
  default columns) plus any ``parse`` fields; every raw-event row carries ``@ptr``.
- Comparisons with a missing field are false, ``!=`` and ``not like`` included.
- ``pct`` is the nearest-rank percentile (a value that occurred); ``stddev`` is the sample one.
- ``stats`` over no events returns no rows.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lab.cloudwatch import functions, lexer, parser, syntax, values
from lab.cloudwatch.logstore import LogEvent
from lab.cloudwatch.values import Millis, Value

DEFAULT_LIMIT = 10_000
"""Rows a query returns without ``limit`` (AWS's documented default)."""
DEFAULT_COLUMNS = ("@timestamp", "@message")

MalformedQueryError = lexer.MalformedQueryError
Row = dict[str, Value]


@dataclass(frozen=True)
class Statistics:
    records_matched: int
    """Events left after the filters before the first ``stats`` (or all of them)."""
    records_scanned: int
    bytes_scanned: int
    log_groups_scanned: int

    def as_aws(self) -> dict[str, float]:
        """GetQueryResults' ``statistics`` (AWS sends doubles)."""
        return {
            "recordsMatched": float(self.records_matched),
            "recordsScanned": float(self.records_scanned),
            "estimatedRecordsSkipped": 0.0,
            "bytesScanned": float(self.bytes_scanned),
            "estimatedBytesSkipped": 0.0,
            "logGroupsScanned": float(self.log_groups_scanned),
        }


@dataclass(frozen=True)
class Result:
    rows: list[list[dict[str, str]]]
    """Each row a list of ``{"field", "value"}``, fields without a value left out."""
    statistics: Statistics

    def as_dicts(self) -> list[dict[str, str]]:
        """The rows as ``{field: value}``, for reading in tests."""
        return [{cell["field"]: cell["value"] for cell in row} for row in self.rows]


def check(query: str) -> syntax.Query:
    """Parse ``query``; raises ``MalformedQueryError`` where AWS would."""
    return parser.parse(query)


def run(
    query: str | syntax.Query,
    events: Sequence[LogEvent],
    *,
    limit: int | None = None,
    log_groups: int | None = None,
) -> Result:
    """Answer ``query`` over ``events`` (already narrowed to the query's groups and times)."""
    parsed = parser.parse(query) if isinstance(query, str) else query
    ordered = sorted(events, key=lambda e: (-e.timestamp, -e.seq))
    run = _Run([event_fields(e) for e in ordered])
    for command in parsed.commands:
        run.apply(command)
    cap = limit if limit is not None else (None if run.limited else DEFAULT_LIMIT)
    rows = run.rows[:cap] if cap is not None else run.rows
    statistics = Statistics(
        records_matched=run.matched,
        records_scanned=len(events),
        bytes_scanned=sum(e.size for e in events),
        log_groups_scanned=log_groups if log_groups is not None else len({e.group for e in events}),
    )
    return Result([run.output(row) for row in rows], statistics)


def event_fields(event: LogEvent) -> Row:
    """The fields Insights discovers in one event: JSON flattened, then the system fields."""
    row: Row = {}
    text = event.message.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict):
            _flatten(document, "", row)
    row.update(
        {
            "@timestamp": Millis(event.timestamp),
            "@message": event.message,
            "@logStream": event.stream,
            "@log": f"{event.account}:{event.group}",
            "@ingestionTime": Millis(event.ingestion_time),
            "@ptr": event.ptr,
        }
    )
    return row


def _flatten(node: Any, prefix: str, out: Row) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict | list):
            _flatten(value, name + ".", out)
        elif value is not None:
            out[name] = value


class _Run:
    """The rows as they go through the pipeline, and what the result will show."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.shown: list[str] = []
        self.display: tuple[str, ...] | None = None
        self.fields_given = False
        self.aggregated = False
        self.limited = False
        self.matched = len(rows)

    def show(self, names: Sequence[str]) -> None:
        self.shown.extend(n for n in names if n not in self.shown)

    def apply(self, command: syntax.Command) -> None:  # noqa: PLR0912 - one branch per command
        if isinstance(command, syntax.Fields):
            for row in self.rows:
                for item in command.items:
                    _store(row, item.name, evaluate(item.expr, row))
            self.fields_given = True
            self.show([item.name for item in command.items])
        elif isinstance(command, syntax.Display):
            self.display = command.names
        elif isinstance(command, syntax.Filter):
            self.rows = [r for r in self.rows if values.truthy(evaluate(command.condition, r))]
            if not self.aggregated:
                self.matched = len(self.rows)
        elif isinstance(command, syntax.Parse):
            for row in self.rows:
                _parse(command, row)
            self.show(command.names)
        elif isinstance(command, syntax.Stats):
            self.rows = _stats(command, self.rows)
            self.aggregated = True
            self.fields_given = True
            self.display = None
            self.shown = [i.name for i in command.by] + [i.name for i in command.aggregates]
        elif isinstance(command, syntax.Sort):
            for key in reversed(command.keys):
                present = [r for r in self.rows if r.get(key.name) is not None]
                missing = [r for r in self.rows if r.get(key.name) is None]
                present.sort(key=_sort_key(key.name), reverse=key.descending)
                self.rows = present + missing
        elif isinstance(command, syntax.Limit):
            self.rows = self.rows[: command.count]
            self.limited = True
        elif isinstance(command, syntax.Dedup):
            seen: set[tuple[str, ...]] = set()
            kept = []
            for row in self.rows:
                seen_key = tuple(values.format_value(row.get(n)) for n in command.names)
                if any(row.get(n) is None for n in command.names) or seen_key not in seen:
                    seen.add(seen_key)
                    kept.append(row)
            self.rows = kept

    def output(self, row: Row) -> list[dict[str, str]]:
        if self.display is not None:
            names: Sequence[str] = self.display
        elif self.fields_given:
            names = self.shown
        else:
            names = [*DEFAULT_COLUMNS, *(n for n in self.shown if n not in DEFAULT_COLUMNS)]
        if not self.aggregated and "@ptr" not in names:
            names = [*names, "@ptr"]
        return [
            {"field": name, "value": values.format_value(row[name])}
            for name in names
            if row.get(name) is not None
        ]


def _sort_key(name: str) -> Callable[[Row], tuple[int, Any]]:
    return lambda row: values.sort_key(row[name])


def _store(row: Row, name: str, value: Value) -> None:
    if value is None:
        row.pop(name, None)
    else:
        row[name] = value


def _parse(command: syntax.Parse, row: Row) -> None:
    source = row.get(command.source)
    match = None if source is None else command.pattern.search(values.format_value(source))
    for name, group in zip(command.names, command.groups, strict=True):
        _store(row, name, match.group(group) if match else None)


def _stats(command: syntax.Stats, rows: list[Row]) -> list[Row]:
    groups: dict[tuple[Value, ...], list[Row]] = {}
    for row in rows:
        key = tuple(evaluate(item.expr, row) for item in command.by)
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        result: Row = {}
        for item, value in zip(command.by, key, strict=True):
            _store(result, item.name, value)
        for item in command.aggregates:
            _store(result, item.name, evaluate(item.expr, members[0], members))
        out.append(result)
    return out


def evaluate(expr: syntax.Expr, row: Row, group: Sequence[Row] | None = None) -> Value:  # noqa: PLR0911
    """``expr`` for one row; aggregates need the ``group`` of rows ``row`` stands for."""
    if isinstance(expr, syntax.Const):
        return expr.value
    if isinstance(expr, syntax.FieldRef):
        return row.get(expr.name)
    if isinstance(expr, syntax.PeriodLit):
        return expr.period
    if isinstance(expr, syntax.Call):
        if expr.name in functions.AGGREGATES:
            return _aggregate(expr, group if group is not None else [row])
        args = [evaluate(a, row, group) for a in expr.args]
        return functions.SCALAR[expr.name][2](*args)
    if isinstance(expr, syntax.Unary):
        operand = evaluate(expr.operand, row, group)
        if expr.op == "not":
            return not values.truthy(operand)
        number = values.to_number(operand)
        return None if number is None else -number
    if isinstance(expr, syntax.Like):
        subject = evaluate(expr.operand, row, group)
        if subject is None:
            return False
        text = values.format_value(subject)
        found = (
            expr.pattern in text
            if isinstance(expr.pattern, str)
            else expr.pattern.search(text) is not None
        )
        return found != expr.negate
    if isinstance(expr, syntax.In):
        subject = evaluate(expr.operand, row, group)
        if subject is None:
            return False
        found = any(values.compare("=", subject, evaluate(i, row, group)) for i in expr.items)
        return found != expr.negate
    return _binary(expr, row, group)


def _binary(expr: syntax.Binary, row: Row, group: Sequence[Row] | None) -> Value:
    left = evaluate(expr.left, row, group)
    if expr.op == "and":
        return values.truthy(left) and values.truthy(evaluate(expr.right, row, group))
    if expr.op == "or":
        return values.truthy(left) or values.truthy(evaluate(expr.right, row, group))
    right = evaluate(expr.right, row, group)
    if expr.op in parser.COMPARISONS:
        return values.compare(expr.op, left, right)
    a, b = values.to_number(left), values.to_number(right)
    if a is None or b is None or (b == 0 and expr.op in ("/", "%")):
        return None
    return _ARITHMETIC[expr.op](a, b)


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
    "^": operator.pow,
}


def _aggregate(call: syntax.Call, group: Sequence[Row]) -> Value:
    if call.star:
        column: list[Value] = [1] * len(group)
    else:
        column = [evaluate(call.args[0], row) for row in group]
    times = [values.to_number(row.get("@timestamp")) or 0 for row in group]
    percent = 0.0
    if call.name == "pct":
        percent_expr = call.args[1]
        assert isinstance(percent_expr, syntax.Const)
        percent = float(percent_expr.value)
    return functions.aggregate(call.name, column, [int(t) for t in times], percent)
