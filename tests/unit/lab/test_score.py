"""Scoring a diagnosis against ``expect``: every kind of expectation, met and unmet."""

import pytest

from lab import score
from lab.scenario.models import Expect

OOM = "gpu-oom/kv-cache-pressure"
PREALLOC = "gpu-oom/expected-preallocation"
LOWER = "lower-gpu-memory-utilization@deployment/inference/llama-3-8b"
CORDON_A = "cordon-node@node/gpu-a"


def outcome(**kwargs: object) -> score.Outcome:
    values: dict[str, object] = {
        "runbook": "gpu-oom",
        "findings": [OOM],
        "fixes": [LOWER, CORDON_A],
        "checks": {"gpu-memory": "fail", "gpu-nodes-ready": "ok"},
    }
    values.update(kwargs)
    return score.Outcome(**values)  # type: ignore[arg-type]


def test_nothing_stated_nothing_scored() -> None:
    assert score.failures(Expect(), score.Outcome()) == []


def test_everything_met() -> None:
    expect = Expect(
        runbook="gpu-oom",
        findings=[OOM],
        not_findings=[PREALLOC],
        fixes=["lower-gpu-memory-utilization", "cordon-node@node/gpu-a"],
        not_fixes=["scale-up", "cordon-node@node/gpu-b"],
        checks={"gpu-memory": "fail", "gpu-nodes-ready": "ok"},
    )
    assert score.failures(expect, outcome()) == []


@pytest.mark.parametrize(
    ("expected", "proposed", "matches"),
    [
        ("cordon-node", "cordon-node@node/gpu-a", True),
        ("cordon-node@node/gpu-a", "cordon-node@node/gpu-a", True),
        ("cordon-node@node/gpu-b", "cordon-node@node/gpu-a", False),
        ("cordon-node", "scale-up@deployment/inference/x", False),
        ("scale-up", "scale-up-more@deployment/inference/x", False),  # a code is not a prefix
    ],
)
def test_fix_matching(expected: str, proposed: str, matches: bool) -> None:
    assert score.fix_matches(expected, proposed) is matches


def test_wrong_runbook() -> None:
    lines = score.failures(Expect(runbook="gpu-oom"), outcome(runbook="network-latency"))
    assert lines == ["runbook: expected gpu-oom, got network-latency"]
    assert score.failures(Expect(runbook="gpu-oom"), outcome(runbook=None)) == [
        "runbook: expected gpu-oom, got none"
    ]


def test_missing_and_unwanted_findings_say_what_was_found() -> None:
    expect = Expect(findings=[PREALLOC], not_findings=[OOM])
    assert score.failures(expect, outcome()) == [
        f"finding {PREALLOC} missing (got: {OOM})",
        f"finding {OOM} reported but should not be (got: {OOM})",
    ]
    assert score.failures(Expect(findings=[OOM]), outcome(findings=[])) == [
        f"finding {OOM} missing (got: none)"
    ]


def test_a_fix_for_another_target_does_not_count() -> None:
    expect = Expect(fixes=["cordon-node@node/gpu-b"])
    assert score.failures(expect, outcome()) == [
        f"fix cordon-node@node/gpu-b not proposed (proposed: {LOWER}, {CORDON_A})"
    ]


def test_a_refused_fix_says_why() -> None:
    expect = Expect(fixes=["scale-up"])
    refusals = {"scale-up@deployment/inference/x": "replicas would exceed 4"}
    assert score.failures(expect, outcome(refusals=refusals)) == [
        "fix scale-up not proposed (refused scale-up@deployment/inference/x: replicas would exceed 4)"
    ]


def test_unwanted_fixes_name_the_proposal() -> None:
    expect = Expect(not_fixes=["cordon-node", "lower-gpu-memory-utilization@deployment/a/b"])
    assert score.failures(expect, outcome()) == [
        f"fix cordon-node proposed but should not be (as {CORDON_A})"
    ]


def test_checks_wrong_status_and_not_run() -> None:
    expect = Expect(checks={"gpu-memory": "ok", "daily-cost": "fail"})
    lines = score.failures(expect, outcome(check_values={"gpu-memory": "97.5 % on gpu-a/0"}))
    assert lines == [
        "check gpu-memory: expected ok, got fail (value: 97.5 % on gpu-a/0)",
        "check daily-cost: expected fail, but it was not run",
    ]


def test_applied_is_not_scored_without_apply() -> None:
    assert score.failures(Expect(applied={"cordon-node": "applied"}), score.Outcome()) == []
