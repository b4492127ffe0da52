"""``opsbot demo``: bring the lab up for a scenario and show, through the bot's own read tools
(the real kubernetes, Alertmanager and Kubecost clients), what the bot will work from: GPU nodes,
pods and their state, firing alerts and the last day's cost.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from bot import clients
from lab import up
from lab.scenario import loader
from tools import catalog

DEFAULT_SCENARIO = (
    Path(__file__).resolve().parent.parent / "scenarios" / "daily-cost-idle-gpus.yaml"
)

SECTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("GPU nodes", "list_nodes", {"gpu_only": True}),
    ("Pods in the inference namespace", "list_pods", {}),
    ("Firing alerts", "alertmanager_alerts", {}),
    ("Cost of the last 24 hours", "kubecost_daily_cost", {}),
)


def run(files: list[Path]) -> int:
    """Run the demo over ``files``; the exit code is 1 when a scenario failed to load or a
    section could not be read."""
    failed = 0
    for path in files:
        try:
            scenario = loader.load_file(path)
        except loader.ScenarioError as e:
            typer.echo(str(e), err=True)
            failed += 1
            continue
        failed += _show(up.Lab(scenario))
    return 1 if failed else 0


def _show(lab: up.Lab) -> int:
    scenario = lab.scenario
    typer.secho(f"\n=== {scenario.name} ===", bold=True)
    if scenario.description:
        typer.echo(scenario.description.strip())
    errors = 0
    with lab:
        lab.start()
        typer.echo(f"(lab ready in {lab.ready_seconds:.2f}s)")
        for key, value in lab.env().items():
            if key.startswith("AWS_"):
                os.environ[key] = value  # boto3 finds the lab's endpoints here
        box = clients.build_toolbox(lab.settings())
        for title, name, arguments in SECTIONS:
            result = catalog.get(name).run(box, arguments)
            errors += result.status == "error"
            typer.secho(f"\n## {title}  [{result.status}]", bold=True)
            typer.echo(f"# {result.source}: {result.call}")
            typer.echo(result.text)
    if scenario.question:
        typer.echo(f"\nquestion asked in the channel: {scenario.question}")
    expect = scenario.expect
    if expect.runbook or expect.findings or expect.fixes:
        findings = ", ".join(expect.findings) or "-"
        fixes = ", ".join(expect.fixes) or "-"
        typer.echo(
            f"an SRE concludes: runbook={expect.runbook or '-'} findings={findings} fixes={fixes}"
        )
    return errors
