"""Alertmanager's API v2, read side: the alerts it holds now (firing, silenced, inhibited).

The bot's Silence button writes silences through ``tools.changes`` later; here we only read.
"""

from __future__ import annotations

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
