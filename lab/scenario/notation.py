"""The small languages inside a scenario: durations, relative times, series selectors and
promtool's expanding value notation. Each parser raises ValueError with a readable message."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}
_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> timedelta:
    """A Prometheus-style duration (``15s``, ``5m``, ``1h30m``, ``1w``) as a timedelta."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration like 15s, 5m, 2h, 1d or 1w")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def parse_relative_time(text: str) -> timedelta:
    """A time before the scenario's "now", written ``-<duration>`` (``-10m``, ``-0d``).

    Returns how long before now, as a non-negative timedelta.
    """
    if not isinstance(text, str) or not text.startswith("-"):
        raise ValueError(f"{text!r} is not a relative time like -10m, -2h or -1d")
    try:
        return parse_duration(text[1:])
    except ValueError:
        raise ValueError(f"{text!r} is not a relative time like -10m, -2h or -1d") from None


_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_SELECTOR = re.compile(rf"^\s*({_METRIC_NAME})\s*(?:\{{(.*)\}})?\s*$", re.DOTALL)
_LABEL_PAIR = re.compile(rf'\s*({_LABEL_NAME})\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_series_selector(text: str) -> tuple[str, dict[str, str]]:
    """``metric{a="b",c="d"}`` as (metric name, labels); only exact ``=`` matchers."""
    match = _SELECTOR.match(text)
    if not match:
        raise ValueError(f'{text!r} is not a series like metric_name{{label="value"}}')
    name, body = match.group(1), (match.group(2) or "").strip()
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        pair = _LABEL_PAIR.match(body, pos)
        if not pair:
            raise ValueError(f"{text!r}: cannot read the labels at {body[pos:]!r}")
        key, raw = pair.group(1), pair.group(2)
        if key in labels:
            raise ValueError(f"{text!r}: label {key!r} given twice")
        labels[key] = bytes(raw, "utf-8").decode("unicode_escape")
        pos = pair.end()
    return name, labels


_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|inf|NaN)"
_SEGMENT = re.compile(
    rf"^(?:(?P<blank>_)(?:x(?P<blank_n>\d+))?"
    rf"|(?P<start>{_NUMBER})(?:(?P<op>[-+])(?P<step>{_NUMBER}))?(?:x(?P<n>\d+))?)$"
)


def expand_series_values(text: str | float) -> list[float | None]:
    """promtool's expanding notation (``1+2x3``, ``5x4``, ``_x2``) as samples; None is missing.

    ``a+bxN`` and ``a-bxN`` are N+1 samples starting at a; ``axN`` is a repeated N+1 times;
    ``_`` is one missing sample and ``_xN`` N missing samples.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a series value")
    if isinstance(text, int | float):
        return [float(text)]
    values: list[float | None] = []
    for segment in str(text).split():
        match = _SEGMENT.match(segment)
        if not match:
            raise ValueError(
                f"{segment!r} in {text!r} is not promtool notation (a, a+bxN, axN, _xN)"
            )
        if match.group("blank"):
            values.extend([None] * int(match.group("blank_n") or 1))
            continue
        start = float(match.group("start"))
        times = match.group("n")
        if match.group("op") and times is None:
            raise ValueError(f"{segment!r} in {text!r}: a step needs a count, as in 1+2x10")
        step = float(match.group("step") or 0)
        if match.group("op") == "-":
            step = -step
        count = int(times) + 1 if times is not None else 1
        values.extend(start + step * i for i in range(count))
    if not values:
        raise ValueError("a series needs at least one value")
    if all(v is None for v in values):
        raise ValueError(f"{text!r} has no samples, only missing ones")
    return values
