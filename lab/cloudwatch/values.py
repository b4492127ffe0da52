"""Values as Logs Insights treats them: typing, comparison, formatting, sorting and time bins.

Fields hold ``str``, ``int``, ``float``, ``bool`` or ``Millis`` (a time); a missing field is
``None``. JSON booleans behave as 1 and 0 (as in AWS, ``filter ok = 1``). A string that is a
number compares numerically with a number, so ``parse``'d values work in ``filter x > 5``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Value = Any
"""str | int | float | bool | Millis | None."""


class Millis(int):
    """Epoch milliseconds that print as AWS prints a time: ``2026-11-28 01:02:03.000``."""

    def __str__(self) -> str:
        when = datetime.fromtimestamp(int(self) / 1000, tz=UTC)
        return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{int(self) % 1000:03d}"

    def __repr__(self) -> str:
        return f"Millis({int(self)}: {self})"


_NUMERIC = re.compile(r"^\s*-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$")


def to_number(value: Value) -> int | float | None:
    """A number for arithmetic and numeric aggregates, or None when it is not one."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMERIC.match(value):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    return None


def is_number(value: Value) -> bool:
    return isinstance(value, bool | int | float)


def format_value(value: Value) -> str:
    """A value as GetQueryResults sends it (strings all the way)."""
    if isinstance(value, Millis):
        return str(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def truthy(value: Value) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    return bool(value)


def compare(op: str, left: Value, right: Value) -> bool:
    """``left op right`` for = != < <= > >=; anything against a missing value is false."""
    if left is None or right is None:
        return False
    a, b = _comparable(left, right)
    if a is None or b is None:  # a number against a word: only (in)equality means anything
        a, b = format_value(left), format_value(right)
        if op not in ("=", "!="):
            return False
    return bool(_COMPARISONS[op](a, b))


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _comparable(left: Value, right: Value) -> tuple[Any, Any]:
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    if isinstance(left, Millis) and isinstance(right, str) and to_number(right) is None:
        return str(left), right  # @timestamp > "2026-11-28 01:00" compares as text
    if isinstance(right, Millis) and isinstance(left, str) and to_number(left) is None:
        return left, str(right)
    return to_number(left), to_number(right)


def sort_key(value: Value) -> tuple[int, Any]:
    """AWS's natural order, ascending: every non-number before every number.

    Non-numbers compare chunk by chunk: runs of digits by length then value, other runs by
    Unicode; a run of digits against other characters by the first character's code point.
    """
    number = value if is_number(value) else None
    if isinstance(value, str) and value.isdigit():
        number = int(value)
    if number is not None:
        return (1, float(number))
    chunks: list[tuple[Any, ...]] = []
    for run in re.findall(r"\d+|\D+", format_value(value)):
        if run.isdigit():
            chunks.append((ord("0"), len(run), int(run)))
        else:
            chunks.append((ord(run[0]), run))
    return (0, chunks)


# --- durations and time bins -----------------------------------------------------------------
_UNITS_MS = {
    ("ms", "msec", "msecs", "millisecond", "milliseconds"): 1,
    ("s", "sec", "secs", "second", "seconds"): 1000,
    ("m", "min", "mins", "minute", "minutes"): 60_000,
    ("h", "hr", "hrs", "hour", "hours"): 3_600_000,
    ("d", "day", "days"): 86_400_000,
    ("w", "week", "weeks"): 7 * 86_400_000,
}
_UNITS_MONTHS = {
    ("mo", "mos", "mon", "mons", "month", "months"): 1,
    ("q", "qtr", "qtrs", "quarter", "quarters"): 3,
    ("y", "yr", "yrs", "year", "years"): 12,
}


class Period:
    """A ``bin()``/``datefloor()`` period: fixed milliseconds, or calendar months (UTC)."""

    def __init__(self, text: str, *, ms: int = 0, months: int = 0) -> None:
        self.text = text
        self.ms = ms
        self.months = months

    def floor(self, at: int) -> Millis:
        if self.ms:
            return Millis(at - at % self.ms)
        when = datetime.fromtimestamp(at / 1000, tz=UTC)
        index = (when.year * 12 + when.month - 1) // self.months * self.months
        start = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
        return Millis(int(start.timestamp() * 1000))

    def ceil(self, at: int) -> Millis:
        low = self.floor(at)
        if low == at:
            return low
        if self.ms:
            return Millis(low + self.ms)
        when = datetime.fromtimestamp(low / 1000, tz=UTC)
        index = when.year * 12 + when.month - 1 + self.months
        return Millis(int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000))

    def __str__(self) -> str:
        return self.text


def parse_period(text: str) -> Period | None:
    """``5m``, ``1h``, ``30sec``, ``1mo``… as a Period, or None when it is not one."""
    match = re.fullmatch(r"(\d+)([A-Za-z]+)", text)
    if not match or int(match.group(1)) == 0:
        return None
    count, unit = int(match.group(1)), match.group(2)
    for names, ms in _UNITS_MS.items():
        if unit in names:
            return Period(text, ms=count * ms)
    for names, months in _UNITS_MONTHS.items():
        if unit in names:
            return Period(text, months=count * months)
    return None
