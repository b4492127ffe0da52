"""Block Kit builders: what people see, within Slack's limits, with data that cannot ping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.diagnose.model import CheckResult, Diagnosis, Evidence, Finding, Proposal, Trigger
from bot.slack import blocks

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def _alert(name: str = "GPUMemoryHigh", status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "alertname": name,
        "severity": "critical",
        "status": status,
        "cluster": "prod",
        "labels": {"alertname": name, "node": "gpu-a", **labels},
        "annotations": {"description": "GPU 0 on gpu-a is above 90% memory <!channel> <@U123>"},
        "starts_at": (NOW - timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _texts(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def _limits_hold(message: dict[str, Any]) -> None:
    assert len(message["blocks"]) <= blocks.MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= blocks.MAX_SECTION
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= blocks.MAX_HEADER
        if block["type"] == "context":
            assert len(block["elements"]) <= blocks.MAX_CONTEXT_ELEMENTS


def test_a_firing_alert_has_its_facts_and_three_controls_carrying_only_the_group_id() -> None:
    message = blocks.alert_group([_alert()], cluster="prod", group_id=7, now=NOW)
    text = _texts(message)
    assert "GPUMemoryHigh" in message["text"] and "firing for 12 min" in text
    actions = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    assert [e["action_id"] for e in actions] == ["opsbot_diagnose", "opsbot_silence", "opsbot_ack"]
    assert actions[0]["value"] == "7" and actions[2]["value"] == "7"
    assert [o["value"] for o in actions[1]["options"]] == ["7:1h", "7:4h", "7:24h"]
    # Data from the alert cannot ping the channel or mention anyone.
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&lt;@U123&gt;" in text
    _limits_hold(message)


def test_resolved_silenced_and_acknowledged_messages() -> None:
    resolved = blocks.alert_group(
        [_alert(status="resolved")], cluster="prod", group_id=7, resolved=True, now=NOW
    )
    assert not [b for b in resolved["blocks"] if b["type"] == "actions"]
    assert "RESOLVED GPUMemoryHigh" in _texts(resolved) and "lasted 12 min" in _texts(resolved)
    noted = blocks.alert_group(
        [_alert()],
        cluster="prod",
        group_id=7,
        silence={"id": "s-1", "ends_at": "05:00 UTC", "by": "U1"},
        acked_by="U2",
        now=NOW,
    )
    assert "Silenced by <@U1> until 05:00 UTC (id s-1)" in _texts(noted)
    assert "Acknowledged by <@U2>" in _texts(noted)


def test_a_large_group_is_one_summary_within_the_limits() -> None:
    alerts = [_alert(pod=f"llama-{i}") for i in range(120)]
    message = blocks.alert_group(alerts, cluster="prod", group_id=1, now=NOW)
    _limits_hold(message)
    assert "+100 more alerts in this group" in _texts(message)
    assert "(+119 more)" in message["blocks"][0]["text"]["text"]


def _diagnosis(findings: int = 2, value: str = "0.97") -> Diagnosis:
    found = [
        Finding(
            code="gpu-oom/kv-cache-pressure",
            summary=f"KV cache full {i}",
            confidence=0.9,
            evidence=[
                Evidence(source="prometheus", call="max(vllm:kv_cache_usage_perc)", value=value)
            ],
        )
        for i in range(findings)
    ]
    proposal = Proposal(
        code="lower-gpu-memory-utilization",
        target="deployment/inference/llama",
        finding="gpu-oom/kv-cache-pressure",
        reason="r",
        patch=[],
        patch_hash="h",
        diff="containers[vllm].args: --gpu-memory-utilization 0.98 → 0.85",
        risk="Smaller KV cache.",
    )
    return Diagnosis(
        trigger=Trigger(kind="question", question="?"),
        runbook="gpu-oom",
        findings=found,
        proposals=[proposal],
        unreachable=["kubecost"],
    )


def test_a_diagnosis_shows_evidence_codes_unreachable_mode_and_fixes() -> None:
    message = blocks.diagnosis(_diagnosis(), fallback="the model is unreachable")
    text = _texts(message)
    assert "max(vllm:kv_cache_usage_perc)" in text and "*0.97*" in text
    assert "Unreachable: kubecost" in text and "unknown, not healthy" in text
    assert "findings: gpu-oom/kv-cache-pressure" in text
    assert "answered by the runbook detectors · the model is unreachable" in text
    assert "lower-gpu-memory-utilization@deployment/inference/llama" in text
    huge = blocks.diagnosis(_diagnosis(findings=40, value="x" * 10_000))
    _limits_hold(huge)


def test_long_answers_are_split_at_line_boundaries_and_say_who_answered() -> None:
    text = "\n".join(f"line {i} " + "word " * 30 for i in range(100))
    parts = blocks.answer(text, mode="llm")
    assert len(parts) > 1
    assert all(len(p["blocks"][0]["text"]["text"]) <= blocks.MAX_SECTION for p in parts)
    assert all(p["blocks"][0]["text"]["text"].startswith("line") for p in parts)
    assert "answered by the model" in json.dumps(parts[-1]["blocks"][-1])


def test_checks_status_and_help() -> None:
    results = [
        CheckResult(id="gpu-nodes-ready", status="ok", value="2/2 Ready", threshold="all Ready"),
        CheckResult(
            id="daily-cost", status="unknown", value="kubecost unreachable", threshold="< 1000 USD"
        ),
    ]
    message = blocks.checks(results)
    assert message["text"] == "Daily checks: unknown"
    assert ":grey_question: *daily-cost* UNKNOWN" in _texts(message)
    assert blocks.status([])["text"] == "Nothing is firing."
    assert blocks.status([_alert(), _alert("NCCLTimeout")])["text"] == "2 alerts firing"
    assert "/opsbot check" in _texts(blocks.help_message())
