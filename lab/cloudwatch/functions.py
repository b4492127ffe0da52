"""The functions a query can call: scalar ones (``fields``, ``filter``) and aggregates (``stats``).

Each scalar function takes evaluated arguments and returns a value, or None (missing) when an
argument is missing or of the wrong kind, as AWS leaves such a result empty. ``bin(p)`` is
``datefloor(@timestamp, p)``; the parser rewrites it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

from lab.cloudwatch.values import Millis, Period, Value, format_value, sort_key, to_number


def _text(value: Value) -> str | None:
    return None if value is None else format_value(value)


def _number_fn(fn: Callable[[float], float]) -> Callable[..., Value]:
    def apply(value: Value) -> Value:
        number = to_number(value)
        if number is None:
            return None
        try:
            result = fn(number)
        except ValueError:  # log(0), sqrt(-1)
            return None
        return int(result) if isinstance(result, float) and result.is_integer() else result

    return apply


def _string_fn(fn: Callable[..., str | int | bool]) -> Callable[..., Value]:
    def apply(value: Value, *rest: Value) -> Value:
        text = _text(value)
        if text is None or any(r is None for r in rest):
            return None
        return fn(text, *[format_value(r) for r in rest])

    return apply


def _substr(value: Value, start: Value, length: Value = None) -> Value:
    text, begin = _text(value), to_number(start)
    if text is None or begin is None:
        return None
    begin = int(begin)
    if length is None:
        return text[begin:]
    count = to_number(length)
    return None if count is None else text[begin : begin + int(count)]


def _extreme(pick: Callable[..., float]) -> Callable[..., Value]:
    def apply(*values: Value) -> Value:
        numbers = [n for n in (to_number(v) for v in values) if n is not None]
        return pick(numbers) if numbers else None

    return apply


def _date(rounding: str) -> Callable[[Value, Value], Value]:
    def apply(value: Value, period: Value) -> Value:
        at = to_number(value)
        if at is None or not isinstance(period, Period):
            return None
        return period.floor(int(at)) if rounding == "floor" else period.ceil(int(at))

    return apply


def _from_millis(value: Value) -> Value:
    number = to_number(value)
    return None if number is None else Millis(int(number))


def _to_millis(value: Value) -> Value:
    number = to_number(value)
    return None if number is None else int(number)


SCALAR: dict[str, tuple[int, int, Callable[..., Value]]] = {
    # name: (least arguments, most arguments, implementation)
    "ispresent": (1, 1, lambda v: v is not None),
    "isempty": (1, 1, lambda v: v is None or format_value(v) == ""),
    "isblank": (1, 1, lambda v: v is None or format_value(v).strip() == ""),
    "coalesce": (1, 99, lambda *vs: next((v for v in vs if v is not None), None)),
    "strlen": (1, 1, _string_fn(len)),
    "toupper": (1, 1, _string_fn(str.upper)),
    "tolower": (1, 1, _string_fn(str.lower)),
    "trim": (1, 2, _string_fn(lambda s, chars=None: s.strip(chars))),
    "ltrim": (1, 2, _string_fn(lambda s, chars=None: s.lstrip(chars))),
    "rtrim": (1, 2, _string_fn(lambda s, chars=None: s.rstrip(chars))),
    "concat": (1, 99, lambda *vs: "".join(format_value(v) for v in vs if v is not None)),
    "substr": (2, 3, _substr),
    "replace": (3, 3, _string_fn(lambda s, old, new: s.replace(old, new))),
    "strcontains": (2, 2, _string_fn(lambda s, part: part in s)),
    "abs": (1, 1, _number_fn(abs)),
    "ceil": (1, 1, _number_fn(math.ceil)),
    "floor": (1, 1, _number_fn(math.floor)),
    "log": (1, 1, _number_fn(math.log)),
    "sqrt": (1, 1, _number_fn(math.sqrt)),
    "greatest": (1, 99, _extreme(max)),
    "least": (1, 99, _extreme(min)),
    "datefloor": (2, 2, _date("floor")),
    "dateceil": (2, 2, _date("ceil")),
    "frommillis": (1, 1, _from_millis),
    "tomillis": (1, 1, _to_millis),
}

AGGREGATES: dict[str, tuple[int, int]] = {
    # name: (least arguments, most arguments); count also takes `*` or nothing
    "count": (0, 1),
    "count_distinct": (1, 1),
    "sum": (1, 1),
    "avg": (1, 1),
    "min": (1, 1),
    "max": (1, 1),
    "stddev": (1, 1),
    "pct": (2, 2),
    "earliest": (1, 1),
    "latest": (1, 1),
    "sortsfirst": (1, 1),
    "sortslast": (1, 1),
}


def aggregate(
    name: str, values: Sequence[Value], times: Sequence[int], percent: float = 0
) -> Value:
    """``name`` over one group's values (None where a row has none); ``times`` per row."""
    present = [(v, t) for v, t in zip(values, times, strict=True) if v is not None]
    if name in _OVER_VALUES:
        return _OVER_VALUES[name](present)
    numbers = [n for n in (to_number(v) for v, _ in present) if n is not None]
    if not numbers:
        return None
    result = _NUMERIC[name](numbers, percent)
    if name in ("min", "max") and all(isinstance(v, Millis) for v, _ in present):
        return Millis(result)  # min(@timestamp) is still a time
    return result


Timed = list[tuple[Value, int]]


def _by_time(pick: Callable[..., tuple[Value, int]]) -> Callable[[Timed], Value]:
    return lambda present: pick(present, key=lambda pair: pair[1])[0] if present else None


def _by_order(pick: Callable[..., Value]) -> Callable[[Timed], Value]:
    return lambda present: pick((v for v, _ in present), key=sort_key) if present else None


_OVER_VALUES: dict[str, Callable[[Timed], Value]] = {
    "count": len,
    "count_distinct": lambda present: len({format_value(v) for v, _ in present}),
    "earliest": _by_time(min),
    "latest": _by_time(max),
    "sortsfirst": _by_order(min),
    "sortslast": _by_order(max),
}


def _percentile(numbers: list[float], percent: float) -> float:
    """The nearest-rank percentile: always a value that occurred."""
    ordered = sorted(numbers)
    rank = math.ceil(percent / 100 * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


_NUMERIC: dict[str, Callable[[list[float], float], float]] = {
    "sum": lambda ns, _: sum(ns),
    "avg": lambda ns, _: sum(ns) / len(ns),
    "min": lambda ns, _: min(ns),
    "max": lambda ns, _: max(ns),
    "stddev": lambda ns, _: statistics.stdev(ns) if len(ns) > 1 else 0,
    "pct": _percentile,
}
