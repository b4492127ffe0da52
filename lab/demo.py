"""``opsbot demo``: bring up the lab for each scenario and show what the bot will work from.

For every scenario: validate it, start the fake Kubernetes API built from it, and print the
nodes and pods read back over HTTP (the same API the bot's tools use), then the alerts and the
question the scenario poses and what a competent SRE concludes.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import typer

from lab.kube.cluster import FakeCluster
from lab.scenario import loader
from lab.scenario.models import Scenario


def run(files: list[Path]) -> int:
    """Run the demo over ``files``; the exit code is 1 when any scenario failed to load."""
    failed = 0
    for path in files:
        try:
            scenario = loader.load_file(path)
        except loader.ScenarioError as e:
            typer.echo(str(e), err=True)
            failed += 1
            continue
        _show(scenario)
    return 1 if failed else 0


def _show(scenario: Scenario) -> None:
    typer.secho(f"\n=== {scenario.name} ===", bold=True)
    if scenario.description:
        typer.echo(scenario.description)
    with FakeCluster.from_scenario(scenario) as cluster:
        nodes = _get(cluster.url, "/api/v1/nodes")["items"]
        pods = _get(cluster.url, "/api/v1/pods")["items"]
    typer.echo(f"\nKubernetes API (lab at {cluster.url}): {len(nodes)} nodes, {len(pods)} pods")
    _table(["NODE", "READY", "INSTANCE", "GPUS", "ZONE"], [_node_row(n) for n in nodes])
    typer.echo("")
    _table(["POD", "NODE", "STATUS", "READY", "RESTARTS"], [_pod_row(p) for p in pods])
    for alert in scenario.alerts:
        labels = alert.labels
        typer.echo(f"\nalert {alert.status}: {labels['alertname']} ({labels.get('severity', '-')})")
    if scenario.question:
        typer.echo(f"\nquestion: {scenario.question}")
    expect = scenario.expect
    if expect.runbook or expect.findings or expect.fixes:
        findings = ", ".join(expect.findings) or "-"
        fixes = ", ".join(expect.fixes) or "-"
        typer.echo(f"expected: runbook={expect.runbook or '-'} findings={findings} fixes={fixes}")


def _get(base: str, path: str) -> Any:
    if not base.startswith("http://127.0.0.1:"):
        raise ValueError(f"the demo only talks to the local lab, not {base}")
    with urllib.request.urlopen(base + path, timeout=10) as response:  # noqa: S310 - local lab
        return json.load(response)


def _node_row(node: dict[str, Any]) -> list[str]:
    labels = node["metadata"].get("labels", {})
    ready = next(
        (c["status"] for c in node["status"].get("conditions", []) if c["type"] == "Ready"), "?"
    )
    return [
        node["metadata"]["name"],
        "Ready" if ready == "True" else "NotReady",
        labels.get("node.kubernetes.io/instance-type", "-"),
        str(node["status"].get("capacity", {}).get("nvidia.com/gpu", "0")),
        labels.get("topology.kubernetes.io/zone", "-"),
    ]


def _pod_row(pod: dict[str, Any]) -> list[str]:
    statuses = pod["status"].get("containerStatuses", [])
    waiting = next(
        (s["state"]["waiting"]["reason"] for s in statuses if "waiting" in s.get("state", {})), None
    )
    ready = sum(1 for s in statuses if s.get("ready"))
    return [
        f"{pod['metadata']['namespace']}/{pod['metadata']['name']}",
        pod["spec"].get("nodeName") or "<none>",
        waiting or pod["status"].get("phase", "?"),
        f"{ready}/{len(pod['spec']['containers'])}",
        str(sum(s.get("restartCount", 0) for s in statuses)),
    ]


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
