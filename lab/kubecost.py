"""Kubecost's Allocation API (``GET /model/allocation``) over a scenario's ``costs.allocations``.

The window grammar is OpenCost's ``parseWindow`` (core/pkg/opencost/window.go), which Kubecost
shares; the set layout follows Kubecost's docs (daily sets aligned to UTC midnight):

- ``Nd`` / ``Nw``: "the entirety of today plus the entirety of the past N-1 days", midnight to
  midnight UTC: ``1d`` is ``[today 00:00, tomorrow 00:00)``; nothing after now has cost, so it
  sums today 00:00 → now. ``Nm`` / ``Nh`` are exact: ``[now - N, now]``.
- ``today``, ``yesterday``, ``week`` (Sunday 00:00 → now), ``lastweek``, ``month``,
  ``lastmonth``; ``<dur> offset <dur>``.
- ``start,end`` as unix seconds or RFC 3339 *with a Z* (as Kubecost's regex) are exact.
- ``accumulate=true``: one set for the window; otherwise one set per ``step`` (default 1d),
  cut at step boundaries counted from the epoch (weeks from Sunday), clipped to the window.
  Sets that start at or after now are left out.

A row ``day: -Nd`` covers ``[now - N d - 24 h, now - N d]`` evenly, so each set gets the
overlapping fraction of its cost (exact fractions, one rounding at the end). There is no idle,
pod or container data: ``idle`` is accepted and ignored, and an unaggregated query names each
row ``cluster/namespace/controller``. ``aggregate=controller`` names ``deployment:<name>`` as
Kubecost does for a controller with a known kind (workloads are Deployments).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from lab.httpserver import LabServer, Request, Response, json_response, text_response
from lab.scenario import models, notation

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
UNALLOCATED = "__unallocated__"
COST_FIELDS = ("cpuCost", "gpuCost", "ramCost", "pvCost", "networkCost")
_TICK = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_SUNDAY = datetime(1970, 1, 4, tzinfo=UTC)
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": DAY, "w": WEEK}
_DURATION = re.compile(r"^(\d+)(m|h|d|w)$")
_DURATION_OFFSET = re.compile(r"^(\d+)(m|h|d|w) offset (\d+)(m|h|d|w)$")
_TIMESTAMPS = re.compile(r"^(\d+)[,|-](\d+)$")
_RFC3339 = r"\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ"
_RFC3339_PAIR = re.compile(rf"^({_RFC3339}),({_RFC3339})$")
_KNOWN_AGGREGATES = {
    "cluster", "node", "namespace", "controllerKind", "controller", "service", "pod",
    "container", "deployment", "statefulset", "daemonset", "job", "department", "environment",
    "owner", "product", "team",
}  # fmt: skip
_ACCUMULATE_STEPS = {"hour": timedelta(hours=1), "day": DAY, "week": WEEK}


class BadRequest(ValueError):
    """A query Kubecost answers with 400; the message is Kubecost's wording."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _named(now: datetime) -> dict[str, Window]:
    today = _midnight(now)
    sunday = today - DAY * ((today.weekday() + 1) % 7)
    first = today.replace(day=1)
    return {
        "today": Window(today, today + DAY),
        "yesterday": Window(today - DAY, today),
        "week": Window(sunday, now),
        "lastweek": Window(sunday - WEEK, sunday),
        "month": Window(first, now),
        "lastmonth": Window((first - DAY).replace(day=1), first),
    }


def _relative(text: str, now: datetime) -> Window | None:
    if match := _DURATION.match(text):
        length = int(match.group(1)) * _UNITS[match.group(2)]
        if match.group(2) in "dw":  # whole UTC days: today plus the N-1 days before it
            return Window(_midnight(now - length) + DAY, _midnight(now) + DAY)
        return Window(now - length, now)
    if match := _DURATION_OFFSET.match(text):
        end = now - int(match.group(3)) * _UNITS[match.group(4)]
        return Window(end - int(match.group(1)) * _UNITS[match.group(2)], end)
    return None


def _absolute(text: str) -> Window | None:
    try:
        if match := _TIMESTAMPS.match(text):
            start, end = (datetime.fromtimestamp(int(g), UTC) for g in match.groups())
            return Window(start, end)
        if match := _RFC3339_PAIR.match(text):
            start, end = (datetime.fromisoformat(g[:-1] + "+00:00") for g in match.groups())
            return Window(start, end)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def parse_window(text: str, now: datetime) -> Window:
    """A ``window`` parameter as OpenCost's ``parseWindow`` reads it (UTC)."""
    window = _named(now).get(text) or _relative(text, now) or _absolute(text)
    if window is None:
        raise BadRequest(f"Invalid 'window' parameter: illegal window: {text}")
    return window


def set_windows(window: Window, *, step: timedelta | None, now: datetime) -> list[Window]:
    """The sets a query answers: the whole window, or step-aligned pieces of it up to now."""
    if window.end <= window.start:
        return []
    if step is None:
        return [window]
    anchor = _FIRST_SUNDAY if step % WEEK == timedelta(0) else _EPOCH
    cut = anchor + step * ((window.start - anchor) // step)
    pieces = []
    start = window.start
    while start < window.end and start < now:
        cut += step
        end = min(cut, window.end)
        if end > start:
            pieces.append(Window(start, end))
        start = end
    return pieces


def row_window(row: models.Allocation, now: datetime) -> Window:
    """``day: -Nd`` is the 24 h ending N days before now."""
    return Window(now - row.day - DAY, now - row.day)


def _gpus(workload: models.Workload) -> int:
    per_pod = 0
    for container in workload.containers:
        resources = container.get("resources") or {}
        wanted = (resources.get("limits") or {}).get("nvidia.com/gpu")
        wanted = wanted or (resources.get("requests") or {}).get("nvidia.com/gpu") or 0
        per_pod += int(wanted)
    return per_pod * workload.replicas


def gpu_count(cluster: models.Cluster, row: models.Allocation) -> int:
    """GPUs the row's workload (or, without a controller, its namespace) holds now."""
    return sum(
        _gpus(w)
        for w in cluster.workloads
        if w.namespace == row.namespace and row.controller in (None, w.name)
    )


def properties(cluster: str, row: models.Allocation) -> dict[str, str]:
    props = {"cluster": cluster, "namespace": row.namespace}
    if row.controller:
        props.update(controller=row.controller, controllerKind="deployment")
    return props


def group_key(props: dict[str, str], aggregate: list[str]) -> str:
    """The allocation's name for ``aggregate``, as OpenCost's ``GenerateKey`` builds it."""
    if not aggregate:
        return "/".join(
            [props["cluster"], props["namespace"], props.get("controller", UNALLOCATED)]
        )
    names = []
    for field in aggregate:
        if field in ("cluster", "namespace"):
            names.append(props[field])
        elif field == "controller" and "controller" in props:
            names.append(f"{props['controllerKind']}:{props['controller']}")
        elif field == "controllerKind":
            names.append(props.get("controllerKind", UNALLOCATED))
        elif field == "deployment":
            names.append(props.get("controller", UNALLOCATED))
        else:  # no pods, labels or services behind a row
            names.append(UNALLOCATED)
    return "/".join(names)


def parse_aggregate(text: str | None) -> list[str]:
    fields = [f.strip() for f in (text or "").split(",") if f.strip()]
    for field in fields:
        label = field.startswith(("label:", "annotation:")) and len(field.split(":", 1)[1]) > 0
        if field not in _KNOWN_AGGREGATES and not label:
            raise BadRequest(f"Invalid 'aggregate' parameter: illegal aggregation: {field}")
    return fields


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Group:
    props: dict[str, str]
    start: datetime
    end: datetime
    costs: dict[str, Fraction]
    gpu_hours: Fraction

    def add(self, props: dict[str, str], start: datetime, end: datetime) -> None:
        self.props = {k: v for k, v in self.props.items() if props.get(k) == v}
        self.start, self.end = min(self.start, start), max(self.end, end)


def allocation_set(
    rows: Iterable[models.Allocation],
    piece: Window,
    *,
    cluster: models.Cluster,
    aggregate: list[str],
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """One AllocationSet: each group's overlapping share of its rows' costs in ``piece``."""
    groups: dict[str, _Group] = {}
    for row in rows:
        covered = row_window(row, now)
        start, end = max(covered.start, piece.start), min(covered.end, piece.end)
        if end <= start:
            continue
        share = Fraction((end - start) // _TICK, DAY // _TICK)
        props = properties(cluster.name, row)
        key = group_key(props, aggregate)
        group = groups.get(key)
        if group is None:
            zero = dict.fromkeys(COST_FIELDS, Fraction(0))
            group = groups[key] = _Group(dict(props), start, end, zero, Fraction(0))
        group.add(props, start, end)
        for name in COST_FIELDS:
            group.costs[name] += Fraction(getattr(row, name)) * share
        group.gpu_hours += gpu_count(cluster, row) * share * 24
    return {key: _allocation(key, g, piece) for key, g in sorted(groups.items())}


def _allocation(name: str, g: _Group, piece: Window) -> dict[str, Any]:
    minutes = (g.end - g.start).total_seconds() / 60
    costs = {k: float(v) for k, v in g.costs.items()}
    total = float(sum(g.costs.values(), Fraction(0)))
    gpu_hours = float(g.gpu_hours)
    zero = 0.0
    return {
        "name": name,
        "properties": g.props,
        "window": {"start": _rfc3339(piece.start), "end": _rfc3339(piece.end)},
        "start": _rfc3339(g.start),
        "end": _rfc3339(g.end),
        "minutes": minutes,
        "cpuCores": zero,
        "cpuCoreRequestAverage": zero,
        "cpuCoreUsageAverage": zero,
        "cpuCoreHours": zero,
        "cpuCost": costs["cpuCost"],
        "cpuCostAdjustment": zero,
        "cpuEfficiency": zero,
        "gpuCount": gpu_hours / (minutes / 60) if minutes else zero,
        "gpuHours": gpu_hours,
        "gpuCost": costs["gpuCost"],
        "gpuCostAdjustment": zero,
        "networkTransferBytes": zero,
        "networkReceiveBytes": zero,
        "networkCost": costs["networkCost"],
        "networkCrossZoneCost": zero,
        "networkCrossRegionCost": zero,
        "networkInternetCost": zero,
        "networkCostAdjustment": zero,
        "loadBalancerCost": zero,
        "loadBalancerCostAdjustment": zero,
        "pvBytes": zero,
        "pvByteHours": zero,
        "pvCost": costs["pvCost"],
        "pvs": None,
        "pvCostAdjustment": zero,
        "ramBytes": zero,
        "ramByteRequestAverage": zero,
        "ramByteUsageAverage": zero,
        "ramByteHours": zero,
        "ramCost": costs["ramCost"],
        "ramCostAdjustment": zero,
        "ramEfficiency": zero,
        "sharedCost": zero,
        "externalCost": zero,
        "totalCost": total,
        "totalEfficiency": zero,
        "rawAllocationOnly": None,
    }


def _step(request: Request) -> timedelta | None:
    """The set length: None for one set (accumulate), else ``step`` (default 1d)."""
    accumulate = (request.arg("accumulate") or "false").strip().lower()
    if accumulate in ("true", "1", "t", "all"):
        return None
    if accumulate in _ACCUMULATE_STEPS:
        return _ACCUMULATE_STEPS[accumulate]
    text = request.arg("step")
    if not text:
        return DAY
    try:
        step = notation.parse_duration(text)
    except ValueError:
        raise BadRequest(f"Invalid 'step' parameter: {text}") from None
    if step <= timedelta(0):
        raise BadRequest(f"Invalid 'step' parameter: {text}")
    return step


class Kubecost:
    """The allocation data of one scenario at one moment, answered per query."""

    def __init__(self, scenario: models.Scenario, *, now: datetime | None = None) -> None:
        moment = now or datetime.now(UTC).replace(microsecond=0)
        self.now = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        self.cluster = scenario.cluster
        self.rows = list(scenario.costs.allocations) if scenario.costs else []

    def query(self, request: Request) -> list[dict[str, dict[str, Any]]]:
        """The ``data`` of an allocation query; raises BadRequest."""
        window = parse_window((request.arg("window") or "").strip(), self.now)
        aggregate = parse_aggregate(request.arg("aggregate"))
        step = _step(request)
        pieces = set_windows(window, step=step, now=self.now)
        return [
            allocation_set(
                self.rows, piece, cluster=self.cluster, aggregate=aggregate, now=self.now
            )
            for piece in pieces
        ]

    def handle(self, request: Request) -> Response:
        if request.path not in ("/model/allocation", "/allocation"):
            return text_response("404 page not found\n", 404)
        try:
            data = self.query(request)
        except BadRequest as e:
            body = {"code": 400, "status": "error", "data": None, "message": str(e)}
            return json_response(body, 400)
        return json_response({"code": 200, "status": "success", "data": data})


def start_kubecost(scenario: models.Scenario, *, now: datetime | None = None) -> LabServer:
    """Serve the scenario's allocations on a free port (``/model/allocation``)."""
    return LabServer(Kubecost(scenario, now=now).handle, name="kubecost").start()
