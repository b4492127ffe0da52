"""The worker: takes jobs from the store's inbox and hands each to the handler for its kind.

Intake has already persisted every item before answering; the worker claims each job with a
lease, so a worker that dies mid-job leaves it to be claimed again when the lease runs out.
Handlers make that safe by being idempotent per job (a diagnosis is saved under the job's key,
a Slack message under its group's key). A handler returns what it did or raises: ``GiveUp``
fails the job at once (retrying cannot help), ``RetryLater`` puts it back for a while (someone
else holds the resource), anything else is retried with backoff a few times, then the job is
marked failed with its error (never dropped silently).

The alert handler posts or updates the group's Slack message first, then diagnoses the alert
when its severity is diagnosed automatically (in the message's thread). Without Slack it only
diagnoses, which is what a headless run needs.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from bot import alerts, logs
from bot.diagnose import history
from bot.diagnose.model import Diagnosis
from bot.diagnose.service import Diagnoser, UnknownCluster, trigger_from_alert
from bot.slack import alert_messages, diagnosis_posts
from bot.store import Job, Store

log = logs.get("opsbot.worker")

Outcome = Literal["diagnosed", "posted", "skipped", "retry", "failed"]

AUTO_DIAGNOSE: frozenset[str] = frozenset({"critical"})
"""Severities diagnosed as soon as their alert is posted (a setting to come; see the report)."""

DIAGNOSE_JOB = diagnosis_posts.JOB_KIND


@dataclass(frozen=True)
class Handled:
    """What a handler did with a job that it finished."""

    outcome: Outcome
    diagnosis: Diagnosis | None = None


@dataclass(frozen=True)
class Done:
    """What happened to one job."""

    job: Job
    outcome: Outcome
    diagnosis: Diagnosis | None = None
    error: str | None = None


class Handler(Protocol):
    def __call__(self, job: Job) -> Handled: ...


class GiveUp(Exception):
    """Retrying cannot help (configuration is missing): fail the job now."""


class RetryLater(Exception):
    """Not now (another worker holds the resource): try again after ``seconds``."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class Worker:
    """Claims jobs of the kinds it has handlers for and runs them."""

    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, Handler],
        *,
        name: str | None = None,
        lease_seconds: float = 300,
        max_attempts: int = 5,
        retry_base_seconds: float = 10,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds

    def run_once(self) -> Done | None:
        """Claim and do one ready job; None when the inbox has none."""
        job = self.store.claim(
            self.name, kinds=sorted(self.handlers), lease_seconds=self.lease_seconds
        )
        return None if job is None else self.process(job)

    def run(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> None:
        """Work until ``stop`` is set, waiting ``idle_seconds`` (or for stop) when idle."""
        while not stop.is_set():
            if self.run_once() is None:
                stop.wait(idle_seconds)

    def process(self, job: Job) -> Done:
        try:
            handled = self.handlers[job.kind](job)
        except GiveUp as e:
            return self._failed(job, str(e))
        except RetryLater as e:
            self.store.fail(job.id, str(e), retry_in=e.seconds)
            return Done(job, "retry", error=str(e))
        except Exception as e:  # any other failure is retried, then recorded
            log.exception("job failed", job=job.id, kind=job.kind, attempt=job.attempts)
            if job.attempts >= self.max_attempts:
                return self._failed(job, f"{type(e).__name__}: {e}")
            delay = self.retry_base_seconds * 2 ** (job.attempts - 1)
            self.store.fail(job.id, f"{type(e).__name__}: {e}", retry_in=delay)
            return Done(job, "retry", error=str(e))
        self.store.finish(job.id)
        return Done(job, handled.outcome, diagnosis=handled.diagnosis)

    def _failed(self, job: Job, error: str) -> Done:
        self.store.fail(job.id, error)
        log.error("job gave up", job=job.id, kind=job.kind, error=error)
        return Done(job, "failed", error=error)


class AlertHandler:
    """An alert job: the group's Slack message first, then (maybe) a diagnosis.

    With ``messages`` the diagnosis goes to the message's thread through ``posts`` and only for
    ``auto_diagnose`` severities; without, every firing alert is diagnosed and saved (headless).
    """

    def __init__(
        self,
        store: Store,
        diagnoser: Diagnoser | None,
        *,
        messages: alert_messages.AlertMessages | None = None,
        posts: diagnosis_posts.DiagnosisPosts | None = None,
        auto_diagnose: Collection[str] = AUTO_DIAGNOSE,
    ) -> None:
        self.store = store
        self.diagnoser = diagnoser
        self.messages = messages
        self.posts = posts
        self.auto_diagnose = {s.lower() for s in auto_diagnose}

    def __call__(self, job: Job) -> Handled:
        payload = job.payload
        try:
            if self.messages is None:
                return self._headless(job)
            try:
                group = self.messages.sync(payload)
            except alert_messages.Busy as e:
                raise RetryLater(e.seconds, str(e)) from e
            firing = payload.get("status") == "firing"
            severity = str(payload.get("severity", "")).lower()
            if not firing or severity not in self.auto_diagnose or self.posts is None:
                return Handled("posted")
            answered = self.posts.run(
                key=job.dedupe_key,
                channel=group.channel,
                thread_ts=group.ts,
                trigger=trigger_from_alert(self._alert(payload)),
            )
            return Handled("diagnosed", diagnosis=answered)
        except UnknownCluster as e:  # retrying cannot help: configuration is missing
            raise GiveUp(str(e)) from e

    def _headless(self, job: Job) -> Handled:
        payload = job.payload
        if payload.get("status") != "firing":
            return Handled("skipped")
        done_before = history.for_source(self.store, job.dedupe_key)
        if done_before is not None:  # diagnosed, then the worker died before finishing
            return Handled("diagnosed", diagnosis=done_before)
        if self.diagnoser is None:
            raise GiveUp("no diagnoser: alert jobs need Slack or a diagnoser")
        trigger = trigger_from_alert(self._alert(payload))
        diagnosis = self.diagnoser.diagnose(trigger, source_key=job.dedupe_key)
        log.info(
            "alert diagnosed",
            job=job.id,
            alertname=payload.get("alertname"),
            runbook=diagnosis.runbook,
            findings=diagnosis.codes(),
            proposals=[p.label for p in diagnosis.proposals],
            unreachable=diagnosis.unreachable,
        )
        return Handled("diagnosed", diagnosis=diagnosis)

    def _alert(self, payload: Mapping[str, object]) -> dict[str, object]:
        alert = self.store.get_alert(str(payload["fingerprint"]), str(payload["starts_at"]))
        if alert is None:
            raise LookupError(f"alert {payload['fingerprint']} is not in the store")
        return alert


class DiagnoseHandler:
    """A ``diagnose`` job (the Diagnose button): payload ``{group_id}``; the answer goes to the
    group message's thread."""

    def __init__(self, posts: diagnosis_posts.DiagnosisPosts) -> None:
        self.posts = posts

    def __call__(self, job: Job) -> Handled:
        try:
            answered = self.posts.run_for_group(int(job.payload["group_id"]), key=job.dedupe_key)
        except UnknownCluster as e:
            raise GiveUp(str(e)) from e
        except LookupError as e:
            raise GiveUp(str(e)) from e
        return Handled("diagnosed", diagnosis=answered)


class AlertWorker(Worker):
    """A Worker for alert jobs (and, with Slack, Diagnose-button jobs)."""

    def __init__(
        self,
        store: Store,
        diagnoser: Diagnoser,
        *,
        messages: alert_messages.AlertMessages | None = None,
        posts: diagnosis_posts.DiagnosisPosts | None = None,
        auto_diagnose: Collection[str] = AUTO_DIAGNOSE,
        name: str | None = None,
        lease_seconds: float = 300,
        max_attempts: int = 5,
        retry_base_seconds: float = 10,
    ) -> None:
        handlers: dict[str, Handler] = {
            alerts.JOB_KIND: AlertHandler(
                store, diagnoser, messages=messages, posts=posts, auto_diagnose=auto_diagnose
            )
        }
        if posts is not None:
            handlers[DIAGNOSE_JOB] = DiagnoseHandler(posts)
        super().__init__(
            store,
            handlers,
            name=name,
            lease_seconds=lease_seconds,
            max_attempts=max_attempts,
            retry_base_seconds=retry_base_seconds,
        )
