"""CloudWatch Logs Insights: run a query within the call's deadline, and the guide's queries.

A query is started, polled until Complete (the interval grows from 0.1 s to 1 s) and stopped
when the call's time runs out or it fails, so an abandoned query does not keep scanning (and
billing) on AWS's side. Rows come back as a table; ``call`` is the query, the log groups and the
exact time range. The boto3 plumbing and the error mapping are ``tools.aws``'s.

The operations guide's three queries are kept as named templates, corrected:
- its ``--`` comments are not Logs Insights syntax (``#`` is): pasted whole, the block fails;
- ``kubernetes.pod_name`` exists only where Fluent Bit's kubernetes filter ran; ``@logStream``
  (the pod's stream) is always there, so errors show both;
- the error regex missed "Exception", "Traceback", "FATAL" and other casings;
- the token query grouped lines that carry no tokens into rows with no sums, and was unsorted;
- ``count(*) as count`` reused a function name as a column; the column is ``requests`` now.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tools import awsapi, base, budget
from tools.toolbox import ClusterConfig, Toolbox

SOURCE = "cloudwatch"
FIRST_POLL = 0.1
MAX_POLL = 1.0
STOP_BUDGET = 0.5
"""Seconds StopQuery may take after the deadline (so a timed-out query is not left running)."""
CELL_CHARS = 400
_ENDED = ("Failed", "Cancelled", "Timeout", "Unknown")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LONG_FLOAT = re.compile(r"^-?\d+\.\d{3,}$")

RECENT_ERRORS = """\
fields @timestamp, @logStream, kubernetes.pod_name, @message
| filter @message like /(?i)(error|exception|traceback|fatal|panic)/
| sort @timestamp desc
| limit 100"""

SLOW_REQUESTS = """\
filter latency_ms > {threshold_ms}
| stats count(*) as requests, avg(latency_ms) as avg_latency_ms, max(latency_ms) as max_latency_ms
  by model
| sort avg_latency_ms desc"""

USAGE_BY_HOUR = """\
filter ispresent(input_tokens) or ispresent(output_tokens)
| stats sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
  count(*) as requests by bin(1h) as hour, model
| sort hour desc"""


@dataclass(frozen=True)
class _Plan:
    groups: tuple[str, ...]
    start: datetime
    end: datetime

    @property
    def span(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M:%SZ} .. {self.end:%Y-%m-%dT%H:%M:%SZ}"


def insights_query(
    *,
    box: Toolbox,
    query: str,
    log_groups: Sequence[str] | None = None,
    since: str = "1h",
    start: datetime | None = None,
    end: datetime | None = None,
    cluster: str | None = None,
) -> base.ToolResult:
    """Any Logs Insights query over ``log_groups`` (default: the cluster's configured groups),
    over the last ``since`` or ``start``..``end``; a bad query returns AWS's own message."""
    return _query(
        box=box,
        tool="logs_insights_query",
        query=query,
        log_groups=log_groups,
        since=since,
        start=start,
        end=end,
        cluster=cluster,
    )


def recent_errors(
    *,
    box: Toolbox,
    since: str = "1h",
    log_groups: Sequence[str] | None = None,
    cluster: str | None = None,
) -> base.ToolResult:
    """The newest 100 log lines that look like errors, with their stream (pod)."""
    return _query(
        box=box,
        tool="logs_recent_errors",
        query=RECENT_ERRORS,
        log_groups=log_groups,
        since=since,
        cluster=cluster,
    )


def slow_requests_by_model(
    *,
    box: Toolbox,
    since: str = "1h",
    threshold_ms: int = 5000,
    log_groups: Sequence[str] | None = None,
    cluster: str | None = None,
) -> base.ToolResult:
    """Requests slower than ``threshold_ms`` per model: count, mean and worst latency."""
    return _query(
        box=box,
        tool="logs_slow_requests_by_model",
        query=SLOW_REQUESTS.format(threshold_ms=int(threshold_ms)),
        log_groups=log_groups,
        since=since,
        cluster=cluster,
    )


def token_usage_by_hour(
    *,
    box: Toolbox,
    since: str = "24h",
    log_groups: Sequence[str] | None = None,
    cluster: str | None = None,
) -> base.ToolResult:
    """Input and output tokens and requests per hour per model, newest hour first."""
    return _query(
        box=box,
        tool="logs_token_usage_by_hour",
        query=USAGE_BY_HOUR,
        log_groups=log_groups,
        since=since,
        cluster=cluster,
    )


def duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``1h``, ``7d``, ``1w`` as a timedelta; anything else is Rejected."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise base.Rejected(SOURCE, f"not a duration: {text!r} (use 15m, 1h, 24h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _plan(
    *,
    box: Toolbox,
    cluster: str | None,
    log_groups: Sequence[str] | None,
    since: str,
    start: datetime | None,
    end: datetime | None,
) -> tuple[ClusterConfig, _Plan]:
    try:
        config = box.cluster(cluster)
    except KeyError as e:
        raise base.Rejected(SOURCE, str(e.args[0])) from e
    groups = tuple(g for g in (log_groups or config.log_groups) if g)
    if not groups:
        raise base.Rejected(
            SOURCE, f"no log groups given and none configured for cluster {config.name!r}"
        )
    last = (end or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    first = (start.astimezone(UTC) if start else last - duration(since)).replace(microsecond=0)
    if first >= last:
        raise base.Rejected(SOURCE, f"the range starts ({first}) after it ends ({last})")
    return config, _Plan(groups, first, last)


def _query(
    *,
    box: Toolbox,
    tool: str,
    query: str,
    log_groups: Sequence[str] | None,
    since: str,
    cluster: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> base.ToolResult:
    try:
        config, plan = _plan(
            box=box, cluster=cluster, log_groups=log_groups, since=since, start=start, end=end
        )
    except base.Rejected as e:
        problem = e

        def refuse(_: float) -> base.Output:
            raise problem

        return base.run(tool=tool, source=SOURCE, call=query, fetch=refuse, limits=box.limits)

    def fetch(remaining: float) -> base.Output:
        deadline = time.monotonic() + remaining
        answer = _run(awsapi.clients(box, config), query, plan, deadline=deadline)
        return _render(answer, plan, box.limits.max_chars)

    return base.run(
        tool=tool,
        source=SOURCE,
        call=f"{query}\n[log groups: {', '.join(plan.groups)}; {plan.span}]",
        fetch=fetch,
        limits=box.limits,
        cluster=config.name,
    )


def _call(made: awsapi.Clients, operation: str, deadline: float, **params: Any) -> dict[str, Any]:
    return awsapi.request(made, "logs", operation, deadline=deadline, source=SOURCE, **params)


def _run(made: awsapi.Clients, query: str, plan: _Plan, *, deadline: float) -> dict[str, Any]:
    """StartQuery, then GetQueryResults until Complete; StopQuery if it does not finish."""
    started = _call(
        made,
        "start_query",
        deadline,
        logGroupNames=list(plan.groups),
        startTime=int(plan.start.timestamp()),
        endTime=int(plan.end.timestamp()),
        queryString=query,
    )
    query_id = str(started["queryId"])
    began = time.monotonic()
    interval = FIRST_POLL
    try:
        while True:
            answer = _call(made, "get_query_results", deadline, queryId=query_id)
            status = str(answer.get("status", "Unknown"))
            if status == "Complete":
                return answer
            if status in _ENDED:
                raise base.ServerError(SOURCE, f"the query ended with status {status} on AWS")
            nap = min(interval, deadline - time.monotonic() - 0.05)
            if nap <= 0:
                waited = time.monotonic() - began
                raise base.Timeout(
                    SOURCE, f"query still {status} after {waited:.1f}s; stopped it (StopQuery)"
                )
            time.sleep(nap)
            interval = min(interval * 1.5, MAX_POLL)
    except base.ToolError:
        _stop(made, query_id)
        raise


def _stop(made: awsapi.Clients, query_id: str) -> None:
    """Best effort: a query that already ended cannot be stopped, and that is fine."""
    with contextlib.suppress(base.ToolError):
        _call(made, "stop_query", time.monotonic() + STOP_BUDGET, queryId=query_id)


def _cell(value: str) -> str:
    if _LONG_FLOAT.match(value):
        return f"{float(value):.2f}"
    value = value.replace("\n", " ⏎ ")
    return value if len(value) <= CELL_CHARS else value[:CELL_CHARS] + " …"


def _render(answer: dict[str, Any], plan: _Plan, max_chars: int) -> base.Output:
    rows = [
        {str(c["field"]): str(c.get("value", "")) for c in row if c.get("field") != "@ptr"}
        for row in answer.get("results") or []
    ]
    stats = answer.get("statistics") or {}
    matched, scanned = int(stats.get("recordsMatched", 0)), int(stats.get("recordsScanned", 0))
    head = (
        f"{len(rows):,} rows; {matched:,} of {scanned:,} records matched "
        f"in {', '.join(plan.groups)} ({plan.span})"
    )
    data = {
        "rows": rows,
        "statistics": stats,
        "log_groups": list(plan.groups),
        "start": plan.start.isoformat(),
        "end": plan.end.isoformat(),
    }
    if not rows:
        return base.Output(data=data, text=f"no rows: {head}", no_data=True)
    columns = list(dict.fromkeys(name for row in rows for name in row))
    if "@message" in columns:  # the wide one goes last, so short columns stay aligned
        columns = [c for c in columns if c != "@message"] + ["@message"]
    table_rows = [[_cell(row[c]) if c in row else "" for c in columns] for row in rows]
    text, cut = budget.fit_table(columns, table_rows, max_chars - len(head) - 1, what="rows")
    return base.Output(data=data, text=f"{head}\n{text}", cut=cut)
