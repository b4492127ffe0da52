"""The model's tools: the read tools (through the investigation), ``propose_fix`` and
``report_diagnosis``. Nothing here writes to a cluster.

Read tools go through ``Investigation.tool``, so a call the detectors already made is answered
from memory and every call is counted; their output reaches the model fenced as data.
``propose_fix`` only records a proposal, after the catalog built it on the live object and the
target proved related to the trigger. ``report_diagnosis`` keeps the model's conclusion, with
codes checked against SCENARIOS.md's list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from bot.agent import prompts
from bot.config import Fixes
from bot.diagnose import codes, proposals
from bot.diagnose import subject as subject_mod
from bot.diagnose.investigation import Investigation
from bot.diagnose.model import Diagnosis, Evidence, Finding, FixSuggestion, Proposal
from bot.fixes.catalog import CATALOG
from tools import catalog, redact
from tools.base import ToolResult

CORE_TOOLS = (
    "list_pods",
    "k8s_describe",
    "k8s_events",
    "pod_logs",
    "prometheus_query",
    "gpu_metrics",
    "vllm_status",
)
"""Offered for every trigger; a runbook adds the tools its front matter names."""

MODEL_PROPOSAL = "llm/propose_fix"
"""The ``finding`` a proposal the model asked for is filed under."""


class ProposeFixArgs(BaseModel):
    code: str = Field(description="A fix code from the catalog, e.g. lower-gpu-memory-utilization.")
    target: str = Field(
        description="deployment/NAMESPACE/NAME, node/NAME or nodepool/NAME, involved in this case."
    )
    reason: str = Field(description="One sentence: the evidence that calls for it.")


class ReportArgs(BaseModel):
    findings: list[str] = Field(
        description="Finding codes that hold, e.g. gpu-oom/kv-cache-pressure."
    )
    summary: str = Field(description="Two sentences: what is wrong and the evidence.")


@dataclass
class Record:
    """What the model did besides reading: its report and the proposals it asked for."""

    findings: list[str] = field(default_factory=list)
    summary: str | None = None
    proposals: list[Proposal] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def related_targets(inv: Investigation, diagnosis: Diagnosis) -> set[str]:
    """Objects a fix may target: what the trigger names by its labels, workload or question
    (not the free text of alert annotations, which anyone who controls a label value can
    shape), their pods' nodes and NodePools, and what the detectors' findings and fixes name."""
    trusted = inv.trigger.model_copy(update={"annotations": {}})
    subject = subject_mod.of(inv, trusted, default_namespace=inv.subject.namespace)
    related = {f"deployment/{subject.namespace}/{w}" for w in subject.workloads}
    related |= {f"node/{n}" for n in subject.nodes}
    related |= {f"nodepool/{p}" for p in subject.nodepools}
    for finding in diagnosis.findings:
        if finding.target:
            related.add(finding.target)
        related |= {s.target for s in finding.fixes}
    related |= {p.target for p in diagnosis.proposals}
    return related


def build(
    inv: Investigation,
    diagnosis: Diagnosis,
    *,
    fixes: Fixes,
    names: Iterable[str],
    record: Record,
) -> list[BaseTool]:
    """The tools for one answer: the read tools ``names`` plus propose_fix and report_diagnosis."""
    tools: list[BaseTool] = [_read_tool(inv, catalog.get(name), record) for name in names]
    related = related_targets(inv, diagnosis)

    def propose_fix(code: str, target: str, reason: str) -> str:
        if code not in CATALOG:
            return f"refused: {code!r} is not a fix code (known: {', '.join(sorted(CATALOG))})"
        if target not in related:
            record.refused.append(f"{code}@{target}")
            return (
                f"refused: {target} is not involved in this case "
                f"(involved: {', '.join(sorted(related)) or 'nothing'})"
            )
        suggestion = FixSuggestion(code=code, target=target, reason=redact.redact(reason))
        built, refused = proposals.propose(inv, [_carrier(suggestion)], fixes=fixes, now=inv.now)
        if refused:
            record.refused.append(f"{code}@{target}")
            why = prompts.fence(refused[0].why, source="fix catalog", limit=600)
            return f"refused by the catalog:\n{why}"
        with record.lock:
            record.proposals.extend(built)
        proposal = built[0]  # its diff quotes the live object: data, like any tool output
        diff = prompts.fence(proposal.diff, source="fix catalog", limit=1500)
        return f"recorded for human approval: {proposal.label}\n{diff}"

    def report_diagnosis(findings: list[str], summary: str) -> str:
        unknown = [c for c in findings if c not in codes.FINDING_CODES]
        kept = [c for c in findings if c in codes.FINDING_CODES]
        with record.lock:
            record.findings = list(dict.fromkeys(kept))
            record.summary = redact.redact(summary)[:1200]
        if unknown:
            return f"recorded {kept}; not finding codes, ignored: {unknown}"
        return "recorded; now answer the person in a few short lines"

    tools.append(
        StructuredTool.from_function(
            func=propose_fix,
            name="propose_fix",
            description="Suggest a catalog fix for an object involved in this case. It is only "
            "recorded for a human to approve; nothing is changed.",
            args_schema=ProposeFixArgs,
        )
    )
    tools.append(
        StructuredTool.from_function(
            func=report_diagnosis,
            name="report_diagnosis",
            description="End the diagnosis: the finding codes that hold and a short summary.",
            args_schema=ReportArgs,
        )
    )
    return tools


def tool_names(runbook_tools: Iterable[str]) -> list[str]:
    """Core tools plus the runbook's, each once, all of them real catalog tools."""
    wanted = [*CORE_TOOLS, *runbook_tools]
    return [n for n in dict.fromkeys(wanted) if n in catalog.BY_NAME]


def _read_tool(inv: Investigation, spec: catalog.ToolSpec, record: Record) -> BaseTool:
    def call(**arguments: Any) -> tuple[str, ToolResult]:
        clean = {k: v for k, v in arguments.items() if v is not None}
        result = inv.tool(spec.name, **clean)
        with record.lock:
            record.results.append(result)
        head = f"{result.status} from {result.source}: {result.call}"
        return prompts.fence(f"{head}\n{result.text}", source=spec.name), result

    return StructuredTool.from_function(
        func=call,
        name=spec.name,
        description=spec.description,
        args_schema=spec.args,
        response_format="content_and_artifact",
    )


def _carrier(suggestion: FixSuggestion) -> Finding:
    """A stand-in finding that carries the model's suggestion to ``proposals.propose``."""
    return Finding(
        code=MODEL_PROPOSAL,
        summary=suggestion.reason or "proposed by the model",
        confidence=0.5,
        evidence=[Evidence(source="llm", call="propose_fix", value=suggestion.reason or "-")],
        fixes=[suggestion],
    )
