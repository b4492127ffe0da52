"""What a diagnosis is made of: triggers, evidence, findings, fix suggestions, the diagnosis.

Plain data (pydantic), no I/O: detectors build findings, the engine ranks them and the fix
catalog turns suggestions into bounded proposals. Every finding carries the evidence behind it
(the call made and the value seen, or the log line and where it came from).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Trigger(BaseModel):
    """Why we investigate: an alert, a workload someone named, or a question."""

    kind: Literal["alert", "workload", "question"]
    alertname: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    namespace: str | None = None
    workload: str | None = None
    question: str | None = None
    cluster: str | None = None


class Evidence(BaseModel):
    """One observation: where it came from, what was asked, what was seen."""

    source: str
    """kubernetes, prometheus, cloudwatch, kubecost, aws, alertmanager."""
    call: str
    """The query or API call, exactly as made."""
    value: str
    """What was seen: a number with its unit, a status, or a log line."""
    where: str | None = None
    """The object or stream it is about (pod/inference/x previous logs, node/y)."""


class FixSuggestion(BaseModel):
    """A fix a finding calls for; the fix catalog decides whether it can be proposed."""

    code: str
    target: str
    """``KIND/NAMESPACE/NAME`` or ``node/NAME`` / ``nodepool/NAME`` (SCENARIOS.md)."""
    reason: str = ""


class Finding(BaseModel):
    """A conclusion with its evidence; ``ruled_out`` findings say what was checked and excluded."""

    code: str
    summary: str
    """One sentence a person reads in Slack."""
    confidence: float = Field(ge=0, le=1)
    evidence: list[Evidence] = Field(min_length=1)
    target: str | None = None
    fixes: list[FixSuggestion] = []
    ruled_out: bool = False

    @property
    def runbook(self) -> str:
        return self.code.split("/", 1)[0]


class Proposal(BaseModel):
    """A fix the catalog accepted for a target: the JSON patch, its diff, and why."""

    code: str
    target: str
    finding: str
    reason: str
    patch: list[dict[str, object]]
    """RFC 6902 ops, guarded by ``test`` ops on what they change."""
    patch_hash: str
    """sha256 of the canonical patch: what an approval binds to."""
    diff: str
    summary: str = ""
    risk: str = ""

    @property
    def label(self) -> str:
        """``code@target``, as SCENARIOS.md writes a proposed fix."""
        return f"{self.code}@{self.target}"


class Refusal(BaseModel):
    """A suggested fix the catalog would not build, and why (bounds, protected, not found)."""

    code: str
    target: str
    why: str


class CheckResult(BaseModel):
    """One daily check (SCENARIOS.md): unknown when its source cannot be read, never ok."""

    id: str
    status: Literal["ok", "warn", "fail", "unknown"]
    value: str
    threshold: str
    evidence: list[Evidence] = []


class Diagnosis(BaseModel):
    """The answer to a trigger, as detectors (and later the LLM) reached it."""

    trigger: Trigger
    runbook: str | None
    findings: list[Finding] = []
    """Ranked, most likely first; ruled-out ones last."""
    proposals: list[Proposal] = []
    refusals: list[Refusal] = []
    checks: list[CheckResult] = []
    unreachable: list[str] = []
    """Sources that could not be read: what they would have shown is unknown."""
    mode: Literal["rules", "llm"] = "rules"
    seconds: float = 0.0
    requests: int = 0
    """Backend requests the investigation made (each distinct call once)."""
    id: int | None = None
    """Its row in the store, once persisted."""

    def codes(self) -> list[str]:
        return [f.code for f in self.findings if not f.ruled_out]
