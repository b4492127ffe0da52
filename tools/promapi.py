"""Prometheus's HTTP API under the tools: the client, its errors, PromQL text, rendered results.

The only module that imports prometheus-api-client. Every error of requests and of the client is
mapped onto the tool error tree here (``_mapped``, ``error_for``), keeping Prometheus's own
``errorType``/``error`` text so a model can fix its query. Views that need several numbers ask
for them in one request: each part is tagged with ``label_replace`` and the parts are joined with
``or`` (``tagged``), so a view costs one round trip whatever the number of models or GPUs.
No tools here: ``tools.prom`` and ``tools.gpu`` build on it.
"""

from __future__ import annotations

import ast
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import prometheus_api_client.exceptions
import prometheus_api_client.prometheus_connect
import requests
import urllib3

from tools import base, budget
from tools.toolbox import ClusterConfig, Toolbox

SOURCE = "prometheus"
TAG = "opsbot_part"
"""The label ``tagged`` adds to tell the parts of a combined query apart."""
HUGE = 50
"""Results with more series than this are summarised (label cardinality + top series)."""
TOP = 20
DATA_SERIES = 200
"""Series kept in ``data``: the rest are counted, so a huge result cannot flood a caller."""
DATA_POINTS = 20_000
MAX_POINTS = 11_000
"""Prometheus refuses range queries with more points per series than this."""

T = TypeVar("T")
Sample = tuple[dict[str, str], float]
_DURATION = re.compile(r"^(?:\d+(?:ms|[smhdwy]))+$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_CLIENT_ERROR = re.compile(r"HTTP Status Code (\d+) \((b(['\"]).*\3)\)\s*\Z", re.S)


@dataclass(frozen=True)
class Client:
    """The client of one cluster's Prometheus, with the session it sends through."""

    url: str
    session: requests.Session
    api: Any  # prometheus_api_client.PrometheusConnect: untyped, kept behind this module


def connect(config: ClusterConfig, session: requests.Session | None = None) -> Client:
    """A client that never retries by itself: retries and the deadline belong to ``base.run``."""
    session = session or requests.Session()
    session.verify = False  # what disable_ssl=True means; the client ignores it with a session
    url = config.prometheus_url.rstrip("/")
    api = prometheus_api_client.prometheus_connect.PrometheusConnect(
        url,
        disable_ssl=True,
        retry=urllib3.util.Retry(total=0, read=False),  # read=False: a read timeout stays one
        session=session,
    )
    return Client(url=url, session=session, api=api)


def client(box: Toolbox, cluster: str | None) -> Client:
    """The cached client of the named (or default) cluster; an unknown name is Rejected."""
    try:
        config = box.cluster(cluster)
    except KeyError as e:
        raise base.Rejected(SOURCE, str(e.args[0])) from e
    built: Client = box.client("prometheus", config, connect)
    return built


# ---- errors: the one place that maps requests and the client onto the tool error tree ----


def error_for(status: int, body: bytes) -> base.ToolError:
    """The tool error for an HTTP error answer, carrying Prometheus's own words."""
    try:
        doc = json.loads(body)
        kind, text = str(doc.get("errorType") or ""), str(doc.get("error") or "")
    except (ValueError, AttributeError):
        kind, text = "", body.decode(errors="replace").strip()[:300]
    said = f"HTTP {status}" + (f" {kind}" if kind else "") + (f": {text}" if text else "")
    if kind == "timeout":
        return base.Timeout(SOURCE, f"Prometheus gave up on the query ({said})")
    if kind in ("bad_data", "execution") or status in (400, 422):
        return base.Rejected(SOURCE, said)
    if status == 404 or kind == "not_found":
        return base.NotFound(SOURCE, said)
    if status >= 500:
        return base.ServerError(SOURCE, said)
    return base.Rejected(SOURCE, said)


def _client_error(message: str) -> base.ToolError:
    """prometheus-api-client says ``HTTP Status Code 400 (b'{...}')``; read it back."""
    match = _CLIENT_ERROR.match(message)
    if match is None:
        return base.ServerError(SOURCE, message[:300])
    body = ast.literal_eval(match[2])
    return error_for(int(match[1]), body if isinstance(body, bytes) else b"")


def _read_timed_out(error: BaseException) -> bool:
    """requests reports a read timeout under urllib3's MaxRetryError as a ConnectionError."""
    seen: BaseException | None = error
    for _ in range(8):  # requests -> urllib3 -> socket: a few levels at most
        if seen is None:
            break
        if isinstance(seen, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return True
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = getattr(seen, "reason", None) or nested or seen.__cause__
    return False


def _mapped(action: Callable[[], T], *, url: str, timeout: float) -> T:
    try:
        return action()
    except prometheus_api_client.exceptions.PrometheusApiClientException as e:
        raise _client_error(str(e)) from e
    except requests.JSONDecodeError as e:
        raise base.ServerError(SOURCE, f"{url} answered with something that is not JSON") from e
    except requests.Timeout as e:
        raise base.Timeout(SOURCE, f"no answer within {timeout:.1f}s from {url}") from e
    except requests.ConnectionError as e:
        if _read_timed_out(e):
            raise base.Timeout(SOURCE, f"no answer within {timeout:.1f}s from {url}") from e
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(e))
        why = reason[1].strip().lower() if reason else type(e).__name__
        raise base.Unavailable(SOURCE, f"cannot connect to {url}: {why}") from e
    except requests.RequestException as e:
        raise base.Unavailable(SOURCE, f"request to {url} failed: {type(e).__name__}") from e
    except (KeyError, TypeError) as e:
        raise base.ServerError(SOURCE, f"{url} did not answer as Prometheus does: {e!r}") from e


# ---- requests ----


def _left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0.01:
        raise base.Timeout(SOURCE, "the call's time ran out between queries")
    return remaining


def instant(c: Client, promql: str, *, deadline: float, at: datetime | None = None) -> Any:
    """The raw ``result`` of an instant query; Prometheus itself stops at the deadline too."""
    timeout = _left(deadline)
    params = {"timeout": f"{timeout:.3f}"}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    return _mapped(
        lambda: c.api.custom_query(promql, params=params, timeout=timeout),
        url=c.url,
        timeout=timeout,
    )


def ranged(
    c: Client, promql: str, *, start: datetime, end: datetime, step: float, deadline: float
) -> Any:
    """The raw ``result`` (a matrix) of a range query."""
    timeout = _left(deadline)
    return _mapped(
        lambda: c.api.custom_query_range(
            promql,
            start_time=start,
            end_time=end,
            step=f"{step:g}",
            params={"timeout": f"{timeout:.3f}"},
            timeout=timeout,
        ),
        url=c.url,
        timeout=timeout,
    )


def get_json(c: Client, path: str, key: str, *, deadline: float) -> Any:
    """``data[key]`` of an API path the client has no method for (alerts, rules)."""
    timeout = _left(deadline)

    def action() -> Any:
        response = c.session.get(f"{c.url}{path}", timeout=timeout)
        if response.status_code != 200:
            raise error_for(response.status_code, response.content)
        return response.json()["data"][key]

    return _mapped(action, url=c.url, timeout=timeout)


def samples(result: Any) -> list[Sample]:
    """An instant vector as (labels, value) pairs; a scalar becomes one unlabelled sample."""
    try:
        if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
            return [({}, float(result[1]))]
        return [(dict(i["metric"]), float(i["value"][1])) for i in result if "value" in i]
    except (ValueError, TypeError, KeyError) as e:
        raise base.Rejected(SOURCE, f"the query's result is not numbers: {e}") from e


def tagged(parts: Mapping[str, str]) -> str:
    """One PromQL answering several expressions, each result labelled with its part's name."""
    return "\nor ".join(
        f'label_replace({expr}, "{TAG}", "{name}", "", "")' for name, expr in parts.items()
    )


def split(found: Sequence[Sample]) -> dict[str, list[Sample]]:
    """The rows of a ``tagged`` query, by part name (the tag removed)."""
    out: dict[str, list[Sample]] = {}
    for labels, value in found:
        rest = {k: v for k, v in labels.items() if k != TAG}
        out.setdefault(labels.get(TAG, ""), []).append((rest, value))
    return out


def by_label(parts: Mapping[str, list[Sample]], label: str) -> dict[str, dict[str, float]]:
    """Tagged rows as {value of ``label``: {part: number}} ("" for rows without the label)."""
    out: dict[str, dict[str, float]] = {}
    for part, rows in parts.items():
        for labels, value in rows:
            out.setdefault(labels.get(label, ""), {})[part] = value
    return out


def absent(parts: Mapping[str, list[Sample]], metric_of: Mapping[str, str]) -> list[str]:
    """The metrics behind the parts that returned nothing: unknown, not zero."""
    missing = [metric for part, metric in metric_of.items() if not parts.get(part)]
    return sorted(set(missing), key=missing.index)


# ---- PromQL text and values ----


def duration(text: str) -> float:
    """Seconds in a Prometheus duration (``90s``, ``1h30m``); anything else is Rejected."""
    if not _DURATION.match(text):
        raise base.Rejected(SOURCE, f"{text!r} is not a Prometheus duration such as 5m, 1h, 1d")
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", text))


def matchers(*raw: str, **labels: str | None) -> str:
    """``{k="v",…}`` for the labels given (escaped) after ``raw`` matchers; "" when none."""
    parts = [*raw, *(f'{k}="{_escape(v)}"' for k, v in labels.items() if v)]
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def series_name(labels: Mapping[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def fmt(value: float | None, digits: int = 4) -> str:
    """A number as people read it: integers whole, others to a few significant digits."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"


def _rank(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def parse_time(value: datetime | str, now: datetime) -> datetime:
    """A datetime, ``now``, ``-<duration>`` relative to now, or an ISO 8601 time."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        return now - timedelta(seconds=duration(text[1:]))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise base.Rejected(SOURCE, f"{value!r} is not a time (now, -1h, or ISO 8601)") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---- rendering ----


def _huge(labels: list[dict[str, str]], table_of: Callable[[int], str], max_chars: int) -> str:
    """A result too big to list: its label shape, then as many top series as still fit."""
    summary, _ = budget.fit_text(budget.label_summary(labels), max_chars // 2)
    head = f"{len(labels):,} series: too many to list; their labels, then the top ones"
    return "\n".join([head, summary, table_of(max_chars - len(summary) - len(head) - 4)])


def render_vector(found: list[Sample], max_chars: int) -> base.Output:
    if not found:
        return base.Output(data=[], text="empty result: no series matched", no_data=True)
    ordered = sorted(found, key=lambda s: _rank(s[1]), reverse=True)
    rows = [[fmt(v), series_name(labels)] for labels, v in ordered]
    what = "series (highest value first)"
    if len(found) <= HUGE:
        text, cut = budget.fit_table(["VALUE", "SERIES"], rows, max_chars, what=what)
    else:
        text = _huge(
            [labels for labels, _ in found],
            lambda room: budget.fit_table(["VALUE", "SERIES"], rows[:TOP], room, what=what)[0],
            max_chars,
        )
        cut = f"{len(found):,} series summarised: label cardinality and the top {TOP} by value"
    data = {
        "result_type": "vector",
        "series_count": len(found),
        "series": [{"labels": lb, "value": v} for lb, v in ordered[:DATA_SERIES]],
        "truncated": len(found) > DATA_SERIES,
    }
    return base.Output(data=data, text=text, cut=cut)


def render_matrix(items: list[dict[str, Any]], max_chars: int) -> base.Output:
    """Each series as min / mean / max / last (a model reads that better than points)."""
    if not items:
        return base.Output(data=[], text="empty result: no series matched", no_data=True)
    summaries: list[dict[str, Any]] = []
    for item in items:
        values = [float(v) for _, v in item["values"]]
        finite = [v for v in values if not math.isnan(v)] or [math.nan]
        summaries.append(
            {
                "labels": dict(item["metric"]),
                "points": len(values),
                "min": min(finite),
                "mean": sum(finite) / len(finite),
                "max": max(finite),
                "last": values[-1],
                "values": [[float(t), float(v)] for t, v in item["values"]],
            }
        )
    summaries.sort(key=lambda s: _rank(s["max"]), reverse=True)
    points = sum(s["points"] for s in summaries)
    headers = ["MIN", "MEAN", "MAX", "LAST", "POINTS", "SERIES"]
    rows = [
        [
            *(fmt(s[k]) for k in ("min", "mean", "max", "last")),
            s["points"],
            series_name(s["labels"]),
        ]
        for s in summaries
    ]
    what = "series (highest max first)"
    if len(items) <= HUGE:
        text, cut = budget.fit_table(headers, rows, max_chars, what=what)
    else:
        text = _huge(
            [s["labels"] for s in summaries],
            lambda room: budget.fit_table(headers, rows[:TOP], room, what=what)[0],
            max_chars,
        )
        cut = f"{len(items):,} series summarised: label cardinality and the top {TOP} by max"
    keep_points = points <= DATA_POINTS
    if not keep_points:
        note = f"{points:,} points: data keeps per-series summaries only"
        cut = f"{cut}; {note}" if cut else note
    data = {
        "result_type": "matrix",
        "series_count": len(items),
        "points": points,
        "series": [
            s if keep_points else {k: v for k, v in s.items() if k != "values"}
            for s in summaries[:DATA_SERIES]
        ],
        "truncated": len(items) > DATA_SERIES or not keep_points,
    }
    return base.Output(data=data, text=text, cut=cut)


def run(
    *, box: Toolbox, cluster: str | None, tool: str, call: str, fetch: base.Fetch
) -> base.ToolResult:
    """``base.run`` with this source, the box's limits and the cluster's name."""
    return base.run(
        tool=tool,
        source=SOURCE,
        call=call,
        fetch=fetch,
        limits=box.limits,
        cluster=cluster or box.default,
    )
