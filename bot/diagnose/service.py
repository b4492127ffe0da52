"""The deterministic diagnosis as the bot's entry points use it: alert, workload or question in,
a persisted Diagnosis (findings, proposals, checks, unreachable sources) out.

One Investigation serves the whole answer, so the detectors, the fix catalog's reads and the
daily checks share every call (and ``requests`` counts what the backends really saw).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot import clients, metrics
from bot.config import Settings
from bot.diagnose import engine, history, proposals, questions, registry, runbooks
from bot.diagnose.investigation import Detector, Investigation, Subject
from bot.diagnose.model import CheckResult, Diagnosis, Trigger
from bot.reports import checks as checks_mod
from bot.store import Store
from tools.toolbox import Toolbox


def trigger_from_alert(alert: Mapping[str, Any]) -> Trigger:
    """A Trigger from an alert row as the store returns it (or any labels/annotations map)."""
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    alertname = str(alert.get("alertname") or labels.get("alertname") or "") or None
    return Trigger(
        kind="alert",
        alertname=alertname,
        labels=labels,
        annotations={str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
        namespace=labels.get("namespace") or None,
        cluster=str(alert.get("cluster") or labels.get("cluster") or "") or None,
    )


class Diagnoser:
    """Diagnoses triggers against the configured clusters; built once, used by many threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        box: Toolbox | None = None,
        detectors: Sequence[Detector] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.box = box or clients.build_toolbox(settings)
        self.runbooks = runbooks.load()
        self.detectors = list(registry.DETECTORS if detectors is None else detectors)

    def _investigation(self, trigger: Trigger) -> Investigation:
        if trigger.cluster is not None and trigger.cluster not in self.box.names():
            # An alert from a cluster we are not configured for: say so rather than guess.
            raise UnknownCluster(trigger.cluster, self.box.names())
        namespace = trigger.namespace or self.settings.inference_namespace
        return Investigation(
            box=self.box, trigger=trigger, subject=Subject(namespace=namespace), now=_now()
        )

    def diagnose(self, trigger: Trigger, *, source_key: str | None = None) -> Diagnosis:
        """Investigate, propose the fixes the evidence supports, answer a checklist question
        with the daily checks, and persist the result when a store is configured (once per
        ``source_key``, see ``history.save``)."""
        _, diagnosis = self.investigate(trigger)
        metrics.DIAGNOSES.labels(mode=diagnosis.mode).inc()
        return self.save(diagnosis, source_key=source_key)

    def investigate(self, trigger: Trigger) -> tuple[Investigation, Diagnosis]:
        """The unsaved diagnosis and the investigation behind it (whose calls the agent goes on
        sharing, and whose subject says which objects the trigger involves)."""
        started = time.monotonic()
        inv = self._investigation(trigger)
        diagnosis = engine.investigate(
            inv,
            runbooks=self.runbooks,
            detectors=self.detectors,
            default_namespace=self.settings.inference_namespace,
        )
        proposed, refused = proposals.propose(
            inv, diagnosis.findings, fixes=self.settings.fixes, now=inv.now
        )
        checks: list[CheckResult] = []
        if trigger.kind == "question" and questions.is_checklist(
            trigger.question or "", inv.subject
        ):
            checks = self._checks(inv)
        return inv, diagnosis.model_copy(
            update={
                "proposals": proposed,
                "refusals": refused,
                "checks": checks,
                "unreachable": sorted(inv.unreachable),
                "seconds": time.monotonic() - started,
                "requests": inv.calls,
            }
        )

    def save(self, diagnosis: Diagnosis, *, source_key: str | None = None) -> Diagnosis:
        """``diagnosis`` with its store id, once saved (as is when there is no store)."""
        if self.store is None:
            return diagnosis
        diagnosis_id = history.save(
            self.store,
            diagnosis,
            expiry_minutes=self.settings.approvals.expiry_minutes,
            source_key=source_key,
        )
        return diagnosis.model_copy(update={"id": diagnosis_id})

    def checks(self, *, cluster: str | None = None) -> list[CheckResult]:
        """The daily checks (SCENARIOS.md's table) against ``cluster`` (default: the default)."""
        trigger = Trigger(kind="question", question="daily checks", cluster=cluster)
        return self._checks(self._investigation(trigger))

    def _checks(self, inv: Investigation) -> list[CheckResult]:
        return checks_mod.run_checks(
            inv.tool,
            thresholds=self.settings.thresholds,
            namespace=self.settings.inference_namespace,
        )


class UnknownCluster(ValueError):
    """A trigger names a cluster the bot has no configuration for."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown cluster {name!r} (configured: {', '.join(known)})")
        self.name = name


def _now() -> datetime:
    return datetime.now(UTC)
