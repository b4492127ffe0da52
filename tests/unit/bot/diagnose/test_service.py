"""The diagnosis service on the lab: proposals built on live objects, persisted diagnoses,
checklist questions answered by the daily checks, and a backend that is down."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.diagnose import history, proposals, service
from bot.diagnose.model import Diagnosis, Evidence, Finding, FixSuggestion, Trigger
from bot.fixes import catalog
from bot.fixes.model import FixContext, patch_hash
from bot.store import Store
from lab import up
from lab.scenario import loader
from tools import redact

ROOT = Path(__file__).resolve().parents[4]
OOM_WORKLOAD = "deployment/inference/llama-3-8b"


@dataclass
class Running:
    lab: up.Lab
    store: Store


def _aws_env(lab: up.Lab, mp: pytest.MonkeyPatch) -> None:
    for key, value in lab.env().items():
        if key.startswith("AWS_"):
            mp.setenv(key, value)


@pytest.fixture(scope="module")
def oom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    scenario = loader.load_file(ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml")
    with up.Lab(scenario) as lab, pytest.MonkeyPatch.context() as mp:
        lab.start(deliver_alerts=False)
        _aws_env(lab, mp)
        store = Store(tmp_path_factory.mktemp("store") / "opsbot.sqlite")
        yield Running(lab, store)
        store.close()


def _alert_trigger(lab: up.Lab) -> Trigger:
    return service.trigger_from_alert(lab.scenario.alerts[0].model_dump())


def test_an_alert_gets_findings_and_guarded_proposals_that_are_persisted(oom: Running) -> None:
    diagnoser = service.Diagnoser(oom.lab.settings(), store=oom.store)
    diagnosis = diagnoser.diagnose(_alert_trigger(oom.lab))
    assert diagnosis.runbook == "gpu-oom"
    assert "gpu-oom/kv-cache-pressure" in diagnosis.codes()
    labels = {p.label for p in diagnosis.proposals}
    assert f"lower-gpu-memory-utilization@{OOM_WORKLOAD}" in labels
    lower = next(p for p in diagnosis.proposals if p.code == "lower-gpu-memory-utilization")
    ops = [op["op"] for op in lower.patch]
    assert ops.index("test") < ops.index("replace")  # the old value is checked first
    assert lower.patch_hash == patch_hash(lower.patch)
    assert "0.98 → 0.85" in lower.diff
    assert diagnosis.requests > 0 and diagnosis.unreachable == []

    assert diagnosis.id is not None
    saved = history.load(oom.store, diagnosis.id)
    assert saved is not None
    assert saved.codes() == diagnosis.codes()
    assert [p.label for p in saved.proposals] == [p.label for p in diagnosis.proposals]
    rows = history.proposals(oom.store, diagnosis.id)
    assert {(r["code"], r["target"]) for r in rows} == {
        (p.code, p.target) for p in diagnosis.proposals
    }
    assert all(r["status"] == "proposed" and r["proposer"] == "opsbot" for r in rows)
    assert rows[0]["patch"] == diagnosis.proposals[0].patch


def _finding(*fixes: FixSuggestion) -> Finding:
    evidence = [Evidence(source="kubernetes", call="GET /x", value="y")]
    return Finding(
        code="gpu-oom/kv-cache-pressure",
        summary="s",
        confidence=0.5,
        evidence=evidence,
        fixes=list(fixes),
    )


def test_suggestions_the_catalog_cannot_build_are_refused_with_a_reason(oom: Running) -> None:
    diagnoser = service.Diagnoser(oom.lab.settings())
    inv = diagnoser._investigation(_alert_trigger(oom.lab))
    finding = _finding(
        FixSuggestion(code="scale-up", target="deployment/inference/no-such-model"),
        FixSuggestion(code="use-model-cache-pvc", target=OOM_WORKLOAD),
        FixSuggestion(code="add-zones", target=OOM_WORKLOAD),
        FixSuggestion(code="cordon-node", target="configmap/x"),
        FixSuggestion(code="scale-up", target=OOM_WORKLOAD),
        FixSuggestion(code="scale-up", target=OOM_WORKLOAD),
    )
    built, refused = proposals.propose(inv, [finding], fixes=oom.lab.settings().fixes, now=inv.now)
    assert [p.label for p in built] == [f"scale-up@{OOM_WORKLOAD}"]  # once, not twice
    why = {r.code + "@" + r.target: r.why for r in refused}
    assert "could not read it" in why["scale-up@deployment/inference/no-such-model"]
    assert "not found" in why["scale-up@deployment/inference/no-such-model"].lower()
    assert "model-cache-pvc" in why[f"use-model-cache-pvc@{OOM_WORKLOAD}"]
    assert "NodePool" in why[f"add-zones@{OOM_WORKLOAD}"]
    assert "not a target this bot can patch" in why["cordon-node@configmap/x"]


def test_ruled_out_findings_propose_nothing(oom: Running) -> None:
    diagnoser = service.Diagnoser(oom.lab.settings())
    inv = diagnoser._investigation(_alert_trigger(oom.lab))
    finding = _finding(FixSuggestion(code="scale-up", target=OOM_WORKLOAD))
    finding = finding.model_copy(update={"ruled_out": True})
    assert proposals.propose(inv, [finding], fixes=oom.lab.settings().fixes, now=inv.now) == (
        [],
        [],
    )


@pytest.mark.parametrize(
    ("target", "parsed"),
    [
        ("deployment/inference/x", ("Deployment", "inference", "x")),
        ("node/ip-10-1-2-3.ec2.internal", ("Node", None, "ip-10-1-2-3.ec2.internal")),
        ("nodepool/gpu", ("NodePool", None, "gpu")),
        ("deployment/x", None),
        ("node/ns/x", None),
        ("secret/ns/x", None),
        ("deployment//x", None),
    ],
)
def test_targets_are_parsed_strictly(
    target: str, parsed: tuple[str, str | None, str] | None
) -> None:
    assert proposals.parse_target(target) == parsed


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_prometheus_down_names_it_and_keeps_what_the_others_show(oom: Running) -> None:
    settings = oom.lab.settings(prometheus_url=f"http://127.0.0.1:{_closed_port()}")
    diagnosis = service.Diagnoser(settings).diagnose(_alert_trigger(oom.lab))
    assert diagnosis.unreachable == ["prometheus"]
    # The CUDA OOM in the previous logs is still seen through Kubernetes.
    live = [f for f in diagnosis.findings if not f.ruled_out]
    assert live, diagnosis.findings
    assert all(e.source != "prometheus" for f in live for e in f.evidence)
    assert any(e.source == "kubernetes" for f in live for e in f.evidence)
    checklist = service.Diagnoser(settings).diagnose(
        Trigger(kind="question", question="are the GPUs healthy?")
    )
    by_id = {c.id: c for c in checklist.checks}
    for check in ("error-rate", "p99-latency", "gpu-utilization", "gpu-memory"):
        assert by_id[check].status == "unknown", by_id[check]
    assert by_id["gpu-nodes-ready"].status in ("ok", "fail")  # Kubernetes still answers


def test_a_checklist_question_runs_the_daily_checks_and_a_named_one_does_not(
    oom: Running,
) -> None:
    diagnoser = service.Diagnoser(oom.lab.settings())
    checklist = diagnoser.diagnose(Trigger(kind="question", question="is everything healthy?"))
    assert [c.id for c in checklist.checks] == [
        "gpu-nodes-ready",
        "model-pods-running",
        "error-rate",
        "p99-latency",
        "gpu-utilization",
        "gpu-memory",
        "daily-cost",
    ]
    named = diagnoser.diagnose(Trigger(kind="question", question="is llama-3-8b healthy?"))
    assert named.checks == []
    assert "gpu-oom/kv-cache-pressure" in named.codes()
    assert named.runbook == "gpu-oom"


def test_an_alert_from_an_unconfigured_cluster_is_refused(oom: Running) -> None:
    trigger = _alert_trigger(oom.lab).model_copy(update={"cluster": "somewhere-else"})
    with pytest.raises(service.UnknownCluster, match="somewhere-else"):
        service.Diagnoser(oom.lab.settings()).diagnose(trigger)


def test_the_store_keeps_no_secret(oom: Running) -> None:
    token = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
    diagnosis = Diagnosis(
        trigger=Trigger(kind="question", question=f"why does {token} fail?"),
        runbook=None,
        findings=[_finding()],
    )
    diagnosis_id = history.save(oom.store, diagnosis, expiry_minutes=30)
    row = oom.store.db.execute(
        "SELECT trigger, findings, detail FROM diagnoses WHERE id = ?", [diagnosis_id]
    ).fetchone()
    assert token not in json.dumps(row)
    loaded = history.load(oom.store, diagnosis_id)
    assert loaded is not None and loaded.findings[0].code == "gpu-oom/kv-cache-pressure"


SECRET_ENV = """
name: secret-env
cluster:
  nodes: [{name: gpu-a, instance_type: g6e.xlarge}]
  workloads:
    - name: gateway
      labels: {app: gateway, model: gateway}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--model", "Qwen/Qwen2.5-7B-Instruct"]
          env: {HF_TOKEN: "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}
"""


def test_patches_are_built_on_the_live_object_and_shown_redacted() -> None:
    secret = "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
    with up.Lab(loader.load_text(SECRET_ENV)) as lab:
        lab.start(deliver_alerts=False)
        diagnoser = service.Diagnoser(lab.settings())
        inv = diagnoser._investigation(
            Trigger(kind="workload", namespace="inference", workload="gateway")
        )
        target = "deployment/inference/gateway"
        finding = _finding(FixSuggestion(code="increase-request-timeout", target=target))
        (proposal,), refused = proposals.propose(
            inv, [finding], fixes=lab.settings().fixes, now=inv.now
        )
        raw = inv.obj("Deployment", "gateway", "inference", raw=True).data
    assert refused == []
    shown = json.dumps(proposal.model_dump())
    assert secret not in shown and "REDACTED" in shown  # the pinned env list, as reviewed
    # What applying will do: rebuild on the live object, send it only if its redacted form is
    # what was approved. The rebuilt patch guards the real value, so the test op can pass.
    rebuilt = catalog.build("increase-request-timeout", raw, context=FixContext())
    assert not isinstance(rebuilt, catalog.Refused)
    assert secret in json.dumps(rebuilt.ops)
    assert patch_hash(redact.redact_data(rebuilt.ops)) == proposal.patch_hash
