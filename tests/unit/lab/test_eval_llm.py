"""``opsbot eval --llm scripted`` and ``--llm-url``: the agent answers, the detectors' findings
plus the model's are scored, and the entry carries the model calls and prompt tokens."""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from lab import cli as lab_cli
from lab import eval as lab_eval
from lab import llm as lab_llm
from lab.scenario import loader
from lab.scenario.models import LlmTurn, Scenario

OPSBOT = Path(sys.executable).parent / "opsbot"
ROOT = Path(__file__).resolve().parents[3]
KV_CACHE = ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml"

# The detectors find nothing about context length here; only the model's report can.
MODEL_ONLY = """
name: model-reports-context-too-long
cluster:
  nodes: [{name: gpu-a, instance_type: g5.xlarge}]
  workloads:
    - name: llama-3-8b
      labels: {app: inference, model: llama-3-8b}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--model", "meta-llama/Meta-Llama-3-8B-Instruct", "--max-model-len", "32768"]
          resources: {limits: {nvidia.com/gpu: 1}}
alerts:
  - labels: {alertname: GPUMemoryHigh, severity: warning, node: gpu-a, gpu: "0", namespace: inference}
llm_script:
  - tool_calls:
      - {name: k8s_describe, args: {kind: deployment, name: llama-3-8b, namespace: inference}}
  - tool_calls:
      - name: report_diagnosis
        args: {findings: [gpu-oom/context-too-long], summary: "max-model-len 32768 on a 24 GB A10G."}
  - content: "max-model-len 32768 does not fit the KV cache of one A10G."
expect:
  runbook: gpu-oom
  findings: [gpu-oom/context-too-long]
"""


def _report_only(findings: list[str]) -> list[LlmTurn]:
    """A short script: straight to report_diagnosis with ``findings``, then the answer."""
    report = {"name": "report_diagnosis", "args": {"findings": findings, "summary": "Checked."}}
    return [
        LlmTurn.model_validate({"tool_calls": [report]}),
        LlmTurn.model_validate({"content": "Done."}),
    ]


def _with_script(scenario: Scenario, script: list[LlmTurn]) -> Scenario:
    return scenario.model_copy(update={"llm_script": script})


def _no_lab_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "AWS_"))}


def test_the_entry_carries_the_agents_counts_and_they_equal_the_lab_models_own() -> None:
    scenario = loader.load_file(KV_CACHE)
    assert len(scenario.llm_script) == 3
    with lab_eval.session(scenario, llm=lab_eval.Llm()) as s:
        assert s.lab.llm is not None
        assert s.settings.llm_base_url == f"{s.lab.llm.url}/v1"
        entry = lab_eval.agent_entry(s)
        calls = s.lab.llm.calls()
        assert s.lab.llm.remaining() == 0  # every scripted turn was played
        assert entry.llm_calls == len(calls) == 3
        assert entry.prompt_tokens == s.lab.llm.total_prompt_tokens()
        assert entry.prompt_tokens_max == s.lab.llm.max_prompt_tokens()
        assert not any(c.refused for c in calls)
        # the model's read tools ran against the lab: their fenced output is in the last prompt
        tool_output = [m["content"] for m in calls[-1].messages if m.get("role") == "tool"]
        assert any("torch.OutOfMemoryError" in t and "previous=true" in t for t in tool_output)
    assert entry.passed, entry.failures
    assert entry.mode == "llm" and entry.fallback is None
    assert entry.runbook == "gpu-oom" and "gpu-oom/kv-cache-pressure" in entry.findings
    assert "limit-max-num-seqs@deployment/inference/llama-3-8b" in entry.fixes
    data = entry.to_json()
    assert {"llm_calls", "prompt_tokens", "prompt_tokens_max"} <= set(data)
    assert f"3 LLM calls, largest prompt {entry.prompt_tokens_max} tokens" in lab_eval.row(entry)


def test_a_code_only_the_model_reports_is_scored() -> None:
    scenario = loader.load_text(MODEL_ONLY)
    alone = lab_eval.run_scenario(scenario)  # the detectors alone miss it
    assert alone.failures == [
        f"finding gpu-oom/context-too-long missing (got: {', '.join(alone.findings) or 'none'})"
    ]
    assert "llm_calls" not in alone.to_json()
    entry = lab_eval.run_scenario_llm(scenario, lab_eval.Llm())
    assert entry.passed, entry.failures
    assert "gpu-oom/context-too-long" in entry.findings
    assert entry.runbook == "gpu-oom" and entry.llm_calls == 3


def test_a_report_that_omits_a_code_the_detectors_found_still_passes() -> None:
    scenario = _with_script(loader.load_file(KV_CACHE), _report_only([]))
    entry = lab_eval.run_scenario_llm(scenario, lab_eval.Llm())
    assert entry.passed, entry.failures
    assert "gpu-oom/kv-cache-pressure" in entry.findings
    assert entry.llm_calls == 2


def test_a_model_that_reports_a_code_expect_rules_out_fails_the_scenario() -> None:
    wrong = ["gpu-oom/kv-cache-pressure", "gpu-oom/model-too-large"]
    scenario = _with_script(loader.load_file(KV_CACHE), _report_only(wrong))
    entry = lab_eval.run_scenario_llm(scenario, lab_eval.Llm())
    assert not entry.passed
    assert [f.split(" (got")[0] for f in entry.failures] == [
        "finding gpu-oom/model-too-large reported but should not be"
    ]


def test_a_scenario_without_a_script_still_runs_on_the_models_final_text() -> None:
    entry = lab_eval.run_file(ROOT / "scenarios" / "cache-pvc-pending.yaml", llm=lab_eval.Llm())
    assert entry.passed, entry.failures
    assert entry.llm_calls == 1 and entry.mode == "llm"
    assert entry.prompt_tokens == entry.prompt_tokens_max > 0


@pytest.fixture
def real_model() -> Iterator[lab_llm.ScriptedLlm]:
    """Stands in for a real OpenAI-compatible server that eval knows only by its URL."""
    script: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "vllm_status", "args": {"model": "llama-3-8b"}}]},
        {"content": "The engines are full; see the proposals."},
    ]
    with lab_llm.start_llm(script, model="Qwen/Qwen2.5-14B-Instruct") as model:
        yield model


def test_llm_url_runs_the_agent_against_that_server(real_model: lab_llm.ScriptedLlm) -> None:
    url = f"{real_model.url}/v1"
    result = subprocess.run(
        [str(OPSBOT), "eval", str(KV_CACHE), "--llm-url", url, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_no_lab_env(),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (entry,) = json.loads(result.stdout)["scenarios"]
    calls = real_model.calls()
    assert entry["passed"] and entry["mode"] == "llm"
    assert entry["llm_calls"] == len(calls) == 2
    assert entry["prompt_tokens"] == real_model.total_prompt_tokens()
    assert entry["prompt_tokens_max"] == real_model.max_prompt_tokens()
    assert {c.model for c in calls} == {"Qwen/Qwen2.5-14B-Instruct"}  # the configured model


def test_an_unreachable_model_fails_the_entry_saying_the_detectors_answered() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = lab_eval.Llm(url=f"http://127.0.0.1:{port}/v1")
    entry = lab_eval.run_file(ROOT / "scenarios" / "cache-pvc-pending.yaml", llm=llm)
    assert not entry.passed and entry.mode == "rules"
    assert entry.findings == ["model-loading-failure/cache-pvc-pending"]  # the detectors' answer
    assert len(entry.failures) == 1 and entry.failures[0].startswith("llm: (The model was unava")


EVAL = typer.Typer()
EVAL.command()(lab_cli.eval_command)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--llm", "gpt"], "--llm takes 'scripted'"),
        (["--llm", "scripted", "--llm-url", "http://127.0.0.1:1/v1"], "exclude each other"),
        (["--llm-url", "127.0.0.1:8000"], "must be an http(s) URL"),
        (["--llm", "scripted", "--apply"], "--apply not available yet"),
    ],
)
def test_misused_model_options_are_usage_errors(options: list[str], message: str) -> None:
    result = CliRunner().invoke(EVAL, ["scenarios/cache-pvc-pending.yaml", *options])
    assert result.exit_code == 2
    assert message in result.stderr
