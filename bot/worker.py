"""The worker: takes alert jobs from the store's inbox and diagnoses them.

Intake has already persisted every alert before answering Alertmanager; the worker claims
each job with a lease, so a worker that dies mid-job leaves it to be claimed again when the
lease runs out, and the diagnosis is saved under the job's key, so doing a job twice never
writes a second diagnosis or a second set of proposals. A failure is retried with backoff a
few times, then the job is marked failed with its error (never dropped silently).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Literal

from bot import alerts, logs
from bot.diagnose import history
from bot.diagnose.model import Diagnosis
from bot.diagnose.service import Diagnoser, UnknownCluster, trigger_from_alert
from bot.store import Job, Store

log = logs.get("opsbot.worker")

Outcome = Literal["diagnosed", "skipped", "retry", "failed"]


@dataclass(frozen=True)
class Done:
    """What happened to one job."""

    job: Job
    outcome: Outcome
    diagnosis: Diagnosis | None = None
    error: str | None = None


class AlertWorker:
    """Diagnoses firing alerts from the inbox; resolved ones need no diagnosis."""

    def __init__(
        self,
        store: Store,
        diagnoser: Diagnoser,
        *,
        name: str | None = None,
        lease_seconds: float = 300,
        max_attempts: int = 5,
        retry_base_seconds: float = 10,
    ) -> None:
        self.store = store
        self.diagnoser = diagnoser
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds

    def run_once(self) -> Done | None:
        """Claim and do one ready alert job; None when the inbox has none."""
        job = self.store.claim(self.name, kinds=[alerts.JOB_KIND], lease_seconds=self.lease_seconds)
        return None if job is None else self.process(job)

    def run(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> None:
        """Work until ``stop`` is set, waiting ``idle_seconds`` (or for stop) when idle."""
        while not stop.is_set():
            if self.run_once() is None:
                stop.wait(idle_seconds)

    def process(self, job: Job) -> Done:
        payload = job.payload
        try:
            if payload.get("status") != "firing":
                self.store.finish(job.id)
                return Done(job, "skipped")
            done_before = history.for_source(self.store, job.dedupe_key)
            if done_before is not None:  # diagnosed, then the worker died before finishing
                self.store.finish(job.id)
                return Done(job, "diagnosed", diagnosis=done_before)
            alert = self.store.get_alert(str(payload["fingerprint"]), str(payload["starts_at"]))
            if alert is None:
                raise LookupError(f"alert {payload['fingerprint']} is not in the store")
            diagnosis = self.diagnoser.diagnose(
                trigger_from_alert(alert), source_key=job.dedupe_key
            )
        except UnknownCluster as e:  # retrying cannot help: configuration is missing
            return self._failed(job, str(e))
        except Exception as e:  # any other failure is retried, then recorded
            log.exception("alert job failed", job=job.id, attempt=job.attempts)
            if job.attempts >= self.max_attempts:
                return self._failed(job, f"{type(e).__name__}: {e}")
            delay = self.retry_base_seconds * 2 ** (job.attempts - 1)
            self.store.fail(job.id, f"{type(e).__name__}: {e}", retry_in=delay)
            return Done(job, "retry", error=str(e))
        self.store.finish(job.id)
        log.info(
            "alert diagnosed",
            job=job.id,
            alertname=payload.get("alertname"),
            runbook=diagnosis.runbook,
            findings=diagnosis.codes(),
            proposals=[p.label for p in diagnosis.proposals],
            unreachable=diagnosis.unreachable,
        )
        return Done(job, "diagnosed", diagnosis=diagnosis)

    def _failed(self, job: Job, error: str) -> Done:
        self.store.fail(job.id, error)
        log.error("alert job gave up", job=job.id, error=error)
        return Done(job, "failed", error=error)
