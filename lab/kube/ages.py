"""Ages as kubectl prints them (``45s``, ``3m20s``, ``4h10m``, ``5d3h``), from RFC 3339 stamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tools.kube_render import parse_time  # one parser for lab and tools


def human_duration(seconds: float) -> str:  # noqa: PLR0911 (a port of the Go function)
    """apimachinery's ``duration.HumanDuration``: 45s, 3m20s, 4h10m, 5d3h, 2y10d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d" if hours % 24 == 0 else f"{days}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years, rest = divmod(days, 365)
    if hours < 24 * 365 * 8:
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{years}y"


def since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: the age of a timestamp, ``<unknown>`` when unset."""
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    return human_duration((now - when).total_seconds())
