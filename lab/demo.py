"""``opsbot demo``: bring the lab up for a scenario, show through the bot's own read tools (the
real kubernetes, Alertmanager and Kubecost clients) what the bot works from — GPU nodes, pods,
firing alerts, the last day's cost — and then do the bot's main job: diagnose the first alert
(or answer the scenario's question) with the runbook detectors, evidence and proposed fixes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from bot import clients
from bot.diagnose import service, text
from bot.diagnose.model import Trigger
from lab import up
from lab.scenario import loader
from lab.scenario.models import Scenario
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
        trigger = _trigger(scenario)
        if trigger is not None:
            diagnosis = service.Diagnoser(lab.settings(), box=box).diagnose(trigger)
            typer.secho("\n## The bot's diagnosis (runbook detectors, no LLM)", bold=True)
            typer.echo(text.render(diagnosis))
    expect = scenario.expect
    if expect.runbook or expect.findings or expect.fixes:
        findings = ", ".join(expect.findings) or "-"
        fixes = ", ".join(expect.fixes) or "-"
        typer.echo(
            f"an SRE concludes: runbook={expect.runbook or '-'} findings={findings} fixes={fixes}"
        )
    return errors


def _trigger(scenario: Scenario) -> Trigger | None:
    """The first firing alert, as a click on Diagnose would send it; else the question."""
    firing = [a for a in scenario.alerts if a.status == "firing"]
    if firing:
        return service.trigger_from_alert(firing[0].model_dump())
    if scenario.question:
        return Trigger(kind="question", question=scenario.question)
    return None
