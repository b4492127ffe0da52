"""Score what the bot concluded against a scenario's ``expect`` (SCENARIOS.md), nothing more.

Pure functions over plain data, so every expectation kind is tested without a lab. Only the keys
a scenario states are scored; each unmet one becomes one readable line that says what was
expected and what the bot said instead, because that line is all a reader of a failed eval has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lab.scenario.models import Expect


@dataclass(frozen=True)
class Outcome:
    """What the bot concluded, reduced to what ``expect`` can name."""

    runbook: str | None = None
    findings: Sequence[str] = ()
    """Finding codes, ruled-out ones already left out."""
    fixes: Sequence[str] = ()
    """Proposals as ``code@target``."""
    checks: Mapping[str, str] = field(default_factory=dict)
    """Daily-check id -> ok | warn | fail | unknown."""
    refusals: Mapping[str, str] = field(default_factory=dict)
    """``code@target`` -> why the catalog would not build it (explains a missing fix)."""
    check_values: Mapping[str, str] = field(default_factory=dict)
    """Daily-check id -> the value it saw (explains a wrong status)."""


def fix_matches(expected: str, proposed: str) -> bool:
    """``code`` matches a proposal of that code for any target; ``code@target`` only that one."""
    code, _, target = expected.partition("@")
    proposed_code, _, proposed_target = proposed.partition("@")
    return code == proposed_code and (not target or target == proposed_target)


def failures(expect: Expect, outcome: Outcome) -> list[str]:
    """One line per unmet expectation; empty when the scenario passed.

    ``applied`` is not scored here: it needs ``--apply``, and without it the key is ignored.
    """
    lines: list[str] = []
    if expect.runbook is not None and outcome.runbook != expect.runbook:
        lines.append(f"runbook: expected {expect.runbook}, got {outcome.runbook or 'none'}")
    got = _listing(outcome.findings)
    lines += [
        f"finding {code} missing (got: {got})"
        for code in expect.findings
        if code not in outcome.findings
    ]
    lines += [
        f"finding {code} reported but should not be (got: {got})"
        for code in expect.not_findings
        if code in outcome.findings
    ]
    for expected in expect.fixes:
        if not any(fix_matches(expected, p) for p in outcome.fixes):
            lines.append(_missing_fix(expected, outcome))
    for unwanted in expect.not_fixes:
        matched = [p for p in outcome.fixes if fix_matches(unwanted, p)]
        if matched:
            lines.append(f"fix {unwanted} proposed but should not be (as {', '.join(matched)})")
    for check_id, status in expect.checks.items():
        actual = outcome.checks.get(check_id)
        if actual is None:
            lines.append(f"check {check_id}: expected {status}, but it was not run")
        elif actual != status:
            value = outcome.check_values.get(check_id)
            seen = f" (value: {value})" if value else ""
            lines.append(f"check {check_id}: expected {status}, got {actual}{seen}")
    return lines


def _missing_fix(expected: str, outcome: Outcome) -> str:
    refused = [
        f"{ref}: {why}" for ref, why in outcome.refusals.items() if fix_matches(expected, ref)
    ]
    if refused:
        return f"fix {expected} not proposed (refused {'; '.join(refused)})"
    return f"fix {expected} not proposed (proposed: {_listing(outcome.fixes)})"


def _listing(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"
