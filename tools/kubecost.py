"""Kubecost's Allocation API (OpenCost's too, by ``ClusterConfig.kubecost_path``): cost by
namespace or controller over a window, the daily total, the GPU share and day-over-day change.

Kubecost reads ``1d`` as "today since 00:00 UTC", not the last 24 hours, so "the last 24 h" is
always sent as an exact ``start,end`` window in unix seconds; ``Nh``/``Nm`` windows are sent the
same way so ``call`` shows the exact range. ``Nd`` and named windows go as given, and the text
says how Kubecost aligned them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from tools import base, budget
from tools.toolbox import ClusterConfig, Toolbox

SOURCE = "kubecost"
DAY = timedelta(days=1)
COSTS = ("gpuCost", "cpuCost", "ramCost", "pvCost", "networkCost", "totalCost")
_HEADERS = ["NAME", "GPU", "CPU", "RAM", "PV", "NETWORK", "TOTAL"]
_EXACT = re.compile(r"^(\d+)(m|h)$")
_IDLE = "__idle__"
Sets = list[dict[str, dict[str, Any]]]
"""One answer: Kubecost's allocation sets, each {name: allocation}."""
Render = Callable[[list[Sets], int], base.Output]


def session(box: Toolbox, cluster: ClusterConfig) -> requests.Session:
    """The cluster's HTTP session, made once by the Toolbox."""
    made: requests.Session = box.client("kubecost", cluster, lambda _: requests.Session())
    return made


def last_24h_window(now: datetime) -> str:
    """The 24 h ending at ``now`` as Kubecost's exact ``start,end`` in unix seconds."""
    return _window(now - DAY, now)


def _window(start: datetime, end: datetime) -> str:
    return f"{int(start.timestamp())},{int(end.timestamp())}"


def _exact(window: str, now: datetime) -> str:
    """``24h``/``90m`` as an exact pair ending now; other windows unchanged."""
    match = _EXACT.match(window.strip())
    if not match:
        return window.strip()
    length = timedelta(**{"hours" if match.group(2) == "h" else "minutes": int(match.group(1))})
    return _window(now - length, now)


def _get(http: requests.Session, url: str, params: dict[str, str], timeout: float) -> Any:
    """One GET, Kubecost's errors mapped onto the tree in one place, with its own message."""
    if timeout <= 0.01:
        raise base.Timeout(SOURCE, f"no time left to call {url}")
    try:
        response = http.get(url, params=params, timeout=timeout)
    except requests.Timeout as e:
        raise base.Timeout(SOURCE, f"no answer within {timeout:.1f}s from {url}") from e
    except requests.ConnectionError as e:
        raise base.Unavailable(SOURCE, f"cannot connect to {url}: {type(e).__name__}") from e
    except requests.RequestException as e:
        raise base.Unavailable(SOURCE, f"request to {url} failed: {e}") from e
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    status = response.status_code if response.status_code >= 400 else code
    if isinstance(status, int) and status >= 400:
        said = (body.get("message") if isinstance(body, dict) else None) or response.text[:300]
        error = base.ServerError if status >= 500 else base.Rejected
        if status == 404 and not isinstance(body, dict):
            said = f"{said.strip()} (is kubecost_path right? Kubecost: /model/allocation)"
        raise error(SOURCE, f"HTTP {status}: {said}")
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise base.ServerError(SOURCE, f"not an allocation answer: {response.text[:200]}")
    return body["data"]


def _row(name: str, a: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name}
    row.update({k: float(a.get(k) or 0.0) for k in COSTS})
    row["gpuHours"] = float(a.get("gpuHours") or 0.0)
    window = a.get("window") or {}
    row["start"], row["end"] = window.get("start"), window.get("end")
    return row


def _rows(one_set: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A set's allocations, most expensive first."""
    rows = [_row(name, a) for name, a in one_set.items() if isinstance(a, dict)]
    return sorted(rows, key=lambda r: (-r["totalCost"], r["name"]))


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _cost_table(
    rows: Sequence[dict[str, Any]], max_chars: int, *, what: str
) -> tuple[str, str | None]:
    cells = [[r["name"], *(_money(r[k]) for k in COSTS)] for r in rows]
    return budget.fit_table(_HEADERS, cells, max_chars, what=what)


def _span(rows: Sequence[dict[str, Any]], fallback: str) -> str:
    starts = [r["start"] for r in rows if r.get("start")]
    ends = [r["end"] for r in rows if r.get("end")]
    return f"{min(starts)} .. {max(ends)}" if starts and ends else fallback


class _Request:
    """One allocation query: its URL, parameters and the line ``call`` records."""

    def __init__(
        self,
        config: ClusterConfig,
        window: str,
        aggregate: str,
        accumulate: bool = True,
        step: str | None = None,
    ) -> None:
        self.url = f"{config.kubecost_url.rstrip('/')}{config.kubecost_path}"
        self.params = {"window": window, "aggregate": aggregate}
        self.params.update(accumulate=str(accumulate).lower(), **({"step": step} if step else {}))

    @property
    def line(self) -> str:
        return f"GET {self.url}?{urlencode(self.params)}"

    def send(self, box: Toolbox, config: ClusterConfig, deadline: float) -> Sets:
        data = _get(session(box, config), self.url, self.params, deadline - time.monotonic())
        return [s for s in data if isinstance(s, dict)]


def _run(
    *,
    box: Toolbox,
    tool: str,
    cluster: str | None,
    build: Callable[[ClusterConfig], list[_Request]],
    render: Render,
) -> base.ToolResult:
    """Resolve the cluster, make the requests ``build`` gives within one deadline, render."""
    try:
        config = box.cluster(cluster)
    except KeyError as e:
        problem = base.Rejected(SOURCE, str(e.args[0]))

        def refuse(_: float) -> base.Output:
            raise problem

        return base.run(tool=tool, source=SOURCE, call="", fetch=refuse, limits=box.limits)
    wanted: list[_Request] = build(config)

    def fetch(remaining: float) -> base.Output:
        deadline = time.monotonic() + remaining
        answers = [r.send(box, config, deadline) for r in wanted]
        return render(answers, box.limits.max_chars)

    return base.run(
        tool=tool,
        source=SOURCE,
        call="\n".join(r.line for r in wanted),
        fetch=fetch,
        limits=box.limits,
        cluster=config.name,
    )


def allocation(
    *,
    box: Toolbox,
    window: str = "24h",
    aggregate: str = "namespace",
    accumulate: bool = True,
    step: str | None = None,
    cluster: str | None = None,
    now: datetime | None = None,
) -> base.ToolResult:
    """Cost per ``aggregate`` (namespace, controller, cluster…) over ``window``, most expensive
    first; with ``accumulate=False``, one table per ``step`` (Kubecost's sets)."""
    sent = _exact(window, now or datetime.now(UTC))

    def render(answers: list[Sets], max_chars: int) -> base.Output:
        sets = [_rows(s) for s in answers[0] if s]
        if not sets:
            return base.Output(data={"window": sent, "sets": []}, text=_none(sent), no_data=True)
        lines: list[str] = []
        cut: str | None = None
        room = max_chars // len(sets)
        for rows in sets:
            total = sum(r["totalCost"] for r in rows)
            lines.append(f"{_span(rows, sent)}: total {_money(total)}")
            text, cut_here = _cost_table(rows, room - len(lines[-1]) - 2, what=f"{aggregate}s")
            lines.append(text)
            cut = cut or cut_here
        if window.strip().endswith(("d", "w")):
            lines.append("(Kubecost aligns day and week windows to 00:00 UTC; 1d is today so far)")
        data = {"window": sent, "aggregate": aggregate, "sets": sets}
        return base.Output(data=data, text="\n".join(lines), cut=cut)

    return _run(
        box=box,
        tool="kubecost_allocation",
        cluster=cluster,
        build=lambda c: [_Request(c, sent, aggregate, accumulate, step)],
        render=render,
    )


def _none(window: str) -> str:
    return f"Kubecost has no allocations for window {window}"


def daily_cost(
    *, box: Toolbox, now: datetime | None = None, cluster: str | None = None
) -> base.ToolResult:
    """What the 24 h ending now cost: the total and each namespace, most expensive first."""
    moment = now or datetime.now(UTC)
    window = last_24h_window(moment)

    def render(answers: list[Sets], max_chars: int) -> base.Output:
        rows = _rows(answers[0][0]) if answers[0] else []
        if not rows:
            return base.Output(
                data={"window": window, "total": None}, text=_none(window), no_data=True
            )
        total = sum(r["totalCost"] for r in rows)
        idle = sum(r["totalCost"] for r in rows if r["name"] == _IDLE)
        head = f"cost of the 24 h ending {moment:%Y-%m-%d %H:%M} UTC: {_money(total)}"
        if idle:
            head += f" (idle, not allocated to any namespace: {_money(idle)})"
        text, cut = _cost_table(rows, max_chars - len(head) - 1, what="namespaces")
        data = {
            "window": window,
            "total": total,
            "idle": idle,
            "by_namespace": {r["name"]: r["totalCost"] for r in rows if r["name"] != _IDLE},
            "rows": rows,
        }
        return base.Output(data=data, text=f"{head}\n{text}", cut=cut)

    return _run(
        box=box,
        tool="kubecost_daily_cost",
        cluster=cluster,
        build=lambda c: [_Request(c, window, "namespace")],
        render=render,
    )


def gpu_share(
    *,
    box: Toolbox,
    now: datetime | None = None,
    aggregate: str = "namespace",
    cluster: str | None = None,
) -> base.ToolResult:
    """How much of the last 24 h's cost was GPUs, overall and per namespace (or controller)."""
    window = last_24h_window(now or datetime.now(UTC))

    def render(answers: list[Sets], max_chars: int) -> base.Output:
        rows = _rows(answers[0][0]) if answers[0] else []
        total = sum(r["totalCost"] for r in rows)
        gpu = sum(r["gpuCost"] for r in rows)
        if not rows or total <= 0:
            return base.Output(
                data={"window": window, "share": None}, text=_none(window), no_data=True
            )
        rows.sort(key=lambda r: (-r["gpuCost"], r["name"]))
        by = [
            {
                "name": r["name"],
                "gpuCost": r["gpuCost"],
                "totalCost": r["totalCost"],
                "gpuHours": r["gpuHours"],
                "share_of_own_cost": r["gpuCost"] / r["totalCost"] if r["totalCost"] else None,
                "share_of_gpu_cost": r["gpuCost"] / gpu if gpu else None,
            }
            for r in rows
        ]
        head = f"GPUs were {_money(gpu)} of {_money(total)} ({gpu / total:.1%}) in the last 24 h"
        cells = [
            [
                b["name"],
                _money(b["gpuCost"]),
                _money(b["totalCost"]),
                _pct(b["share_of_own_cost"]),
                _pct(b["share_of_gpu_cost"]),
                f"{b['gpuHours']:.1f}",
            ]
            for b in by
        ]
        text, cut = budget.fit_table(
            ["NAME", "GPU COST", "TOTAL", "GPU % OF OWN", "% OF ALL GPU", "GPU HOURS"],
            cells,
            max_chars - len(head) - 1,
            what=f"{aggregate}s",
        )
        data = {
            "window": window,
            "gpu_cost": gpu,
            "total_cost": total,
            "share": gpu / total,
            "by": by,
        }
        return base.Output(data=data, text=f"{head}\n{text}", cut=cut)

    return _run(
        box=box,
        tool="kubecost_gpu_share",
        cluster=cluster,
        build=lambda c: [_Request(c, window, aggregate)],
        render=render,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def day_over_day(
    *,
    box: Toolbox,
    aggregate: str = "namespace",
    now: datetime | None = None,
    cluster: str | None = None,
) -> base.ToolResult:
    """The 24 h ending now against the 24 h before, per namespace (or controller), biggest
    change first. Two exact windows, not Kubecost's midnight-aligned days."""
    moment = now or datetime.now(UTC)
    current = _window(moment - DAY, moment)
    previous = _window(moment - 2 * DAY, moment - DAY)

    def render(answers: list[Sets], max_chars: int) -> base.Output:
        now_rows = {r["name"]: r["totalCost"] for s in answers[0][:1] for r in _rows(s)}
        before = {r["name"]: r["totalCost"] for s in answers[1][:1] for r in _rows(s)}
        if not now_rows and not before:
            return base.Output(data={"current_window": current}, text=_none(current), no_data=True)
        names = sorted(set(now_rows) | set(before))
        by = [_change(n, now_rows.get(n, 0.0), before.get(n, 0.0)) for n in names]
        by.sort(key=lambda c: (-abs(c["change"]), c["name"]))
        totals = _change("TOTAL", sum(now_rows.values()), sum(before.values()))
        head = (
            f"last 24 h {_money(totals['current'])} vs the 24 h before "
            f"{_money(totals['previous'])}: {totals['change']:+,.2f} ({_pct_change(totals)})"
        )
        cells = [
            [
                c["name"],
                _money(c["previous"]),
                _money(c["current"]),
                f"{c['change']:+,.2f}",
                _pct_change(c),
            ]
            for c in by
        ]
        text, cut = budget.fit_table(
            ["NAME", "PREVIOUS 24 h", "LAST 24 h", "CHANGE", "CHANGE %"],
            cells,
            max_chars - len(head) - 1,
            what=f"{aggregate}s",
        )
        data = {
            "current_window": current,
            "previous_window": previous,
            "current_total": totals["current"],
            "previous_total": totals["previous"],
            "change": totals["change"],
            "change_pct": totals["change_pct"],
            "by": by,
        }
        return base.Output(data=data, text=f"{head}\n{text}", cut=cut)

    return _run(
        box=box,
        tool="kubecost_day_over_day",
        cluster=cluster,
        build=lambda c: [_Request(c, current, aggregate), _Request(c, previous, aggregate)],
        render=render,
    )


def _change(name: str, current: float, previous: float) -> dict[str, Any]:
    change = current - previous
    return {
        "name": name,
        "current": current,
        "previous": previous,
        "change": change,
        "change_pct": change / previous * 100 if previous else None,
    }


def _pct_change(c: dict[str, Any]) -> str:
    if c["change_pct"] is None:
        return "new" if c["current"] else "-"
    return f"{c['change_pct']:+.1f}%"
