"""``opsbot eval``: alerts through the real Alertmanager into the bot's store, then scored."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lab import cli as lab_cli
from lab import eval as lab_eval
from lab.scenario import loader

OPSBOT = Path(sys.executable).parent / "opsbot"

SCENARIO = """
name: {name}
cluster:
  nodes: [{{name: gpu-a, instance_type: g5.xlarge}}]
  workloads:
    - name: llama-3-8b
      labels: {{app: inference, model: llama-3-8b}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--model", "meta-llama/Meta-Llama-3-8B-Instruct"]
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
alerts:
  # Over before eval looks: its resolution follows, so the memory alert is the one diagnosed.
  - labels: {{alertname: GPUTemperatureHigh, severity: critical, node: gpu-a, gpu: "0"}}
    starts_at: -30m
  - labels: {{alertname: GPUMemoryHigh, severity: warning, node: gpu-a, gpu: "0", namespace: inference}}
    annotations: {{summary: GPU memory usage exceeds 90%}}
    starts_at: -5m
  - labels: {{alertname: GPUTemperatureHigh, severity: critical, node: gpu-a, gpu: "0"}}
    status: resolved
expect:
{expect}
"""
PASSING = SCENARIO.format(
    name="eval-passes", expect="  runbook: gpu-oom\n  not_fixes: [cordon-node]"
)
FAILING = SCENARIO.format(
    name="eval-fails",
    expect="  runbook: network-latency\n  findings: [network-latency/nccl-timeout]",
)


def _opsbot(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "AWS_"))}
    return subprocess.run(
        [str(OPSBOT), *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def test_the_alerts_travel_alertmanager_webhook_store_and_the_stored_row_is_diagnosed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2", raising=False)
    scenario = loader.load_text(PASSING)
    with lab_eval.session(scenario) as session:
        statuses = {r["alertname"]: r["status"] for r in session.store.list_alerts()}
        assert statuses == {"GPUMemoryHigh": "firing", "GPUTemperatureHigh": "resolved"}
        assert session.lab.alertmanager is not None
        assert session.lab.alertmanager.notifications_sent() >= 2  # firing, then the resolution
        trigger = session.trigger
        assert trigger is not None and trigger.kind == "alert"
        assert trigger.alertname == "GPUMemoryHigh" and trigger.cluster == "lab"
        assert trigger.annotations == {"summary": "GPU memory usage exceeds 90%"}
        assert os.environ["AWS_ENDPOINT_URL_EC2"] == session.lab.env()["AWS_ENDPOINT_URL_EC2"]
        diagnosis = session.diagnoser().diagnose(trigger)
        assert diagnosis.runbook == "gpu-oom" and diagnosis.requests > 0
    assert "AWS_ENDPOINT_URL_EC2" not in os.environ  # restored once the lab is gone


def test_eval_scores_each_file_and_exits_1_when_one_fails(tmp_path: Path) -> None:
    (tmp_path / "a-passes.yaml").write_text(PASSING)
    (tmp_path / "b-fails.yaml").write_text(FAILING)
    (tmp_path / "c-broken.yaml").write_text("name: broken\nalerts: [{labels: {}}]\n")
    result = _opsbot("eval", str(tmp_path), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert report["summary"] == {"total": 3, "passed": 1, "pass_rate": 0.3333}
    passes, fails, broken = report["scenarios"]
    assert passes["name"] == "eval-passes" and passes["passed"] is True
    assert passes["runbook"] == "gpu-oom" and passes["failures"] == []
    assert passes["seconds"] > 0 and passes["lab_seconds"] > 0 and passes["requests"] > 0
    assert set(passes) >= {"findings", "fixes", "checks"}
    assert fails["passed"] is False
    assert fails["failures"][0] == "runbook: expected network-latency, got gpu-oom"
    assert fails["failures"][1].startswith("finding network-latency/nccl-timeout missing (got: ")
    assert broken == {
        **broken,
        "name": "c-broken",
        "passed": False,
        "failures": ["not a valid scenario: alerts[0].labels: an alert needs labels.alertname"],
    }


def test_a_crash_is_a_failed_entry_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ["one", "two"]:
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\n")

    def crash_on_one(scenario: object) -> lab_eval.Entry:
        if getattr(scenario, "name", "") == "one":
            raise RuntimeError("the lab fell over")
        return lab_eval.Entry(name="two", passed=True)

    monkeypatch.setattr(lab_eval, "run_scenario", crash_on_one)
    entries = lab_eval.run(sorted(tmp_path.glob("*.yaml")))
    assert [(e.name, e.passed) for e in entries] == [("one", False), ("two", True)]
    assert entries[0].failures[0].startswith("error: RuntimeError: the lab fell over (at ")


def test_the_table_shows_failures_under_their_row() -> None:
    entries = [
        lab_eval.Entry(name="good", passed=True, runbook="gpu-oom", seconds=0.4),
        lab_eval.Entry(name="bad", passed=False, failures=["runbook: expected cost, got none"]),
    ]
    lines = [lab_eval.row(e) for e in entries]
    assert lines[0].split() == ["good", "PASS", "gpu-oom", "0.40"]
    assert lines[1].splitlines()[1] == "    - runbook: expected cost, got none"
    assert lab_eval.footer(entries) == "1/2 passed (50%)"


# Usage errors stop before any lab starts, so they run in-process.
EVAL = typer.Typer()
EVAL.command()(lab_cli.eval_command)


def test_apply_is_a_usage_error_until_the_approval_flow_exists() -> None:
    result = CliRunner().invoke(EVAL, ["scenarios/cache-pvc-pending.yaml", "--apply"])
    assert result.exit_code == 2
    assert "not available yet" in result.stderr


def test_no_scenario_files_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(EVAL, [str(tmp_path)])
    assert result.exit_code == 2 and "no scenario files" in result.stderr
