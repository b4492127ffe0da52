"""The engine end to end on public scenarios: runbook selection, ranking, evidence."""

from pathlib import Path

import pytest

from bot import clients
from bot.diagnose import engine, registry, runbooks
from bot.diagnose.model import Diagnosis, Trigger
from lab import up
from lab.scenario import loader
from lab.scenario.models import Scenario

ROOT = Path(__file__).resolve().parents[4]


def _diagnose(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Scenario, Diagnosis]:
    scenario = loader.load_file(ROOT / "scenarios" / f"{name}.yaml")
    with up.Lab(scenario) as lab:
        lab.start(deliver_alerts=False)
        for key, value in lab.env().items():
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
        if scenario.alerts:
            alert = scenario.alerts[0]
            trigger = Trigger(
                kind="alert",
                alertname=alert.labels["alertname"],
                labels=alert.labels,
                annotations=alert.annotations,
            )
        else:
            trigger = Trigger(kind="question", question=scenario.question)
        diagnosis = engine.diagnose(
            trigger,
            box=clients.build_toolbox(lab.settings()),
            runbooks=runbooks.load(),
            detectors=registry.DETECTORS,
            default_namespace="inference",
        )
    return scenario, diagnosis


@pytest.mark.parametrize(
    "name", ["gpu-oom-kv-cache-pressure", "karpenter-spot-only-p5", "latency-queueing-scale-up"]
)
def test_runbook_and_findings_as_expected(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario, diagnosis = _diagnose(name, monkeypatch)
    assert diagnosis.runbook == scenario.expect.runbook
    codes = diagnosis.codes()
    for code in scenario.expect.findings:
        assert code in codes
    for code in scenario.expect.not_findings:
        assert code not in codes
    assert all(f.evidence for f in diagnosis.findings)
    assert diagnosis.requests > 0 and diagnosis.unreachable == []
