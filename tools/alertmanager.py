"""Alertmanager's API v2: the alerts it holds now (firing, silenced, inhibited), and silences.

``create_silence`` is the one write, to Alertmanager (never to a cluster): the Silence button
and ``/opsbot silence`` use it. It is not among the LLM's tools.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tools import base, budget
from tools.toolbox import ClusterConfig, Toolbox

SOURCE = "alertmanager"


def _session(box: Toolbox, cluster: ClusterConfig) -> requests.Session:
    session: requests.Session = box.client("alertmanager", cluster, lambda _: requests.Session())
    return session


def _get(session: requests.Session, url: str, params: dict[str, Any], timeout: float) -> Any:
    """GET with the errors of requests mapped onto the tool error tree, in one place."""
    try:
        response = session.get(url, params=params, timeout=timeout)
    except requests.Timeout as e:
        raise base.Timeout(SOURCE, f"no answer within {timeout:.1f}s from {url}") from e
    except requests.ConnectionError as e:
        raise base.Unavailable(SOURCE, f"cannot connect to {url}: {type(e).__name__}") from e
    if response.status_code >= 500:
        raise base.ServerError(SOURCE, f"HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        raise base.Rejected(SOURCE, f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        return response.json()
    except ValueError as e:
        raise base.ServerError(SOURCE, f"not JSON: {response.text[:200]}") from e


def alerts(
    *, box: Toolbox, cluster: str | None = None, active: bool = True, silenced: bool = False
) -> base.ToolResult:
    """Alerts Alertmanager holds, most severe first."""
    config = box.cluster(cluster)
    url = f"{config.alertmanager_url.rstrip('/')}/api/v2/alerts"
    params = {
        "active": str(active).lower(),
        "silenced": str(silenced).lower(),
        "inhibited": "false",
    }

    def fetch(remaining: float) -> base.Output:
        found = _get(_session(box, config), url, params, remaining)
        rank = {"critical": 0, "warning": 1}
        found.sort(key=lambda a: (rank.get(a["labels"].get("severity", ""), 2), a["startsAt"]))
        rows = [
            [
                a["labels"].get("alertname", "?"),
                a["labels"].get("severity", "-"),
                a["status"]["state"],
                a["startsAt"][:19].replace("T", " "),
                ", ".join(
                    f"{k}={v}"
                    for k, v in sorted(a["labels"].items())
                    if k not in ("alertname", "severity")
                ),
            ]
            for a in found
        ]
        if not rows:
            return base.Output(data=[], text="no active alerts in Alertmanager", no_data=True)
        text, cut = budget.fit_table(
            ["ALERT", "SEVERITY", "STATE", "SINCE (UTC)", "LABELS"],
            rows,
            box.limits.max_chars,
            what="alerts",
        )
        data = [
            {
                "labels": a["labels"],
                "annotations": a.get("annotations", {}),
                "startsAt": a["startsAt"],
            }
            for a in found
        ]
        return base.Output(data=data, text=text, cut=cut)

    return base.run(
        tool="alertmanager_alerts",
        source=SOURCE,
        call=f"GET {url}?active={params['active']}&silenced={params['silenced']}",
        fetch=fetch,
        limits=box.limits,
        cluster=config.name,
    )


# -- the one write: a silence (in Alertmanager, never in the cluster) -------------------------
def _post(session: requests.Session, url: str, body: dict[str, Any], timeout: float) -> Any:
    """POST with the errors of requests mapped onto the tool error tree (never retried)."""
    try:
        response = session.post(url, json=body, timeout=timeout)
    except requests.Timeout as e:
        raise base.Timeout(SOURCE, f"no answer within {timeout:.1f}s from {url}") from e
    except requests.ConnectionError as e:
        raise base.Unavailable(SOURCE, f"cannot connect to {url}: {type(e).__name__}") from e
    if response.status_code >= 500:
        raise base.ServerError(SOURCE, f"HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        raise base.Rejected(SOURCE, f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        return response.json()
    except ValueError as e:
        raise base.ServerError(SOURCE, f"not JSON: {response.text[:200]}") from e


def create_silence(
    *,
    box: Toolbox,
    alertname: str,
    duration: timedelta,
    created_by: str,
    comment: str,
    labels: dict[str, str] | None = None,
    cluster: str | None = None,
    now: datetime | None = None,
) -> base.ToolResult:
    """Silence ``alertname`` (and equal ``labels``, e.g. its cluster) from now for ``duration``
    through Alertmanager's API v2; ``data`` is ``{"silenceID", "startsAt", "endsAt", "matchers"}``.

    Not retried: a POST that timed out may have created the silence, and a second would be a
    duplicate.
    """
    if duration <= timedelta(0):
        raise ValueError(f"a silence needs a positive duration, not {duration}")
    config = box.cluster(cluster)
    url = f"{config.alertmanager_url.rstrip('/')}/api/v2/silences"
    start = now or datetime.now(UTC)
    matchers = [
        {"name": name, "value": value, "isRegex": False, "isEqual": True}
        for name, value in {"alertname": alertname, **(labels or {})}.items()
    ]
    body = {
        "matchers": matchers,
        "startsAt": start.isoformat(),
        "endsAt": (start + duration).isoformat(),
        "createdBy": created_by,
        "comment": comment,
    }

    def fetch(remaining: float) -> base.Output:
        answer = _post(_session(box, config), url, body, remaining)
        data = {
            "silenceID": answer.get("silenceID", ""),
            "startsAt": body["startsAt"],
            "endsAt": body["endsAt"],
            "matchers": matchers,
        }
        shown = ", ".join(f"{m['name']}={m['value']}" for m in matchers)
        return base.Output(
            data=data, text=f"silence {data['silenceID']} until {body['endsAt']} on {shown}"
        )

    return base.run(
        tool="alertmanager_create_silence",
        source=SOURCE,
        call=f"POST {url}",
        fetch=fetch,
        limits=box.limits,
        cluster=config.name,
        retry=False,
    )
