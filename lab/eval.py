"""``opsbot eval``: run the bot against each scenario and score it.

Per scenario (SCENARIOS.md, "What eval runs for a scenario"): bring the lab up, start the bot's
real webhook on a free port with a fresh SQLite store, let the real Alertmanager deliver the
scenario's alerts to it, wait until the store holds them, then answer the first firing alert
from its stored row (or, with no alert, the scenario's question) and score only what ``expect``
states. A scenario that fails to load or crashes is a failed entry; the others still run.

Without an ``Llm`` the runbook detectors answer (the deterministic path). With one, the agent
answers: ``Llm()`` is the lab's scripted model replaying the scenario's ``llm_script``,
``Llm(url=...)`` a real OpenAI-compatible server. The scored findings are then the detectors'
plus the model's, and the entry gains the model calls and prompt tokens the agent reported.

``session`` is the reusable part: the benchmarks repeat answers inside one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot import alerts as alerts_mod
from bot import server
from bot.agent import Agent, Answer
from bot.config import Settings
from bot.diagnose import service
from bot.diagnose.model import CheckResult, Diagnosis, Trigger
from bot.store import Store
from lab import score, up
from lab.scenario import loader
from lab.scenario.models import Alert, Scenario

ALERT_TIMEOUT = 30.0
"""Seconds the alerts get to travel Alertmanager -> webhook -> store (usually well under 1)."""


class EvalError(RuntimeError):
    """The lab or the bot did not get to the point where there is something to score."""


@dataclass(frozen=True)
class Llm:
    """The model the agent path talks to."""

    url: str | None = None
    """An OpenAI-compatible base URL (``http://host:8000/v1``); None: the lab's scripted model,
    replaying the scenario's ``llm_script`` (a scenario without one gets its final text)."""


@dataclass
class Session:
    """One scenario's lab and bot, alerts delivered: everything a diagnosis needs."""

    scenario: Scenario
    lab: up.Lab
    settings: Settings
    store: Store
    trigger: Trigger | None
    """The first firing alert as stored, else the question; None when there is neither."""
    lab_seconds: float

    def diagnoser(self) -> service.Diagnoser:
        """A fresh Diagnoser (and so a fresh per-investigation cache) on the bot's settings."""
        return service.Diagnoser(self.settings, store=self.store)

    def agent(self, diagnoser: service.Diagnoser | None = None) -> Agent:
        """A fresh Agent on the bot's settings (its model is the session's ``Llm``)."""
        return Agent(self.settings, store=self.store, diagnoser=diagnoser or self.diagnoser())


@contextlib.contextmanager
def session(
    scenario: Scenario, *, alert_timeout: float = ALERT_TIMEOUT, llm: Llm | None = None
) -> Iterator[Session]:
    """Lab up, bot webhook listening, the scenario's alerts stored; all stopped on exit.

    The bot's server is bound before the lab starts because Alertmanager needs its URL; its
    webhook route is added once the lab's settings exist, and only then are alerts delivered.
    With a scripted ``llm`` the lab serves the scenario's model and the settings point at it;
    with a URL the settings point there; without one the bot has no model.
    """
    started = time.monotonic()
    token = secrets.token_urlsafe(24)
    with up.Lab(scenario) as lab:
        db_path = lab.workdir / "opsbot.sqlite"
        store = Store(db_path)
        router = server.Router()
        bot = server.BotServer(router, host="127.0.0.1", port=0, on_thread_exit=store.close)
        bot.start()
        try:
            lab.start(
                webhook_url=f"{bot.url}/alertmanager",
                webhook_token=token,
                deliver_alerts=False,
                llm_script=llm is not None and llm.url is None,
            )
            model = {"llm_base_url": llm.url} if llm is not None and llm.url else {}
            settings = lab.settings(webhook_token=token, db_path=db_path, **model)
            router.add(
                "POST", "/alertmanager", server.alertmanager_handler(settings=settings, store=store)
            )
            with _environment(lab.env(), prefix="AWS_"):  # boto3 reads its endpoints here
                assert lab.alertmanager is not None
                lab.alertmanager.deliver(scenario.alerts, now=lab.now)
                rows = wait_for_alerts(store, scenario.alerts, timeout=alert_timeout)
                yield Session(
                    scenario=scenario,
                    lab=lab,
                    settings=settings,
                    store=store,
                    trigger=_trigger(scenario, rows),
                    lab_seconds=time.monotonic() - started,
                )
        finally:
            bot.stop()
            store.close()


@contextlib.contextmanager
def _environment(values: Mapping[str, str], *, prefix: str) -> Iterator[None]:
    """Set the ``prefix`` variables for the duration, then restore what was there."""
    chosen = {k: v for k, v in values.items() if k.startswith(prefix)}
    saved = {k: os.environ.get(k) for k in chosen}
    os.environ.update(chosen)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def expected_statuses(alerts: Sequence[Alert]) -> dict[str, str]:
    """Fingerprint -> the status the store must reach: resolved when the file lists a firing
    alert and its resolved twin, firing otherwise. A resolved alert without a firing twin is
    left out: Alertmanager never notifies a resolution it did not notify firing."""
    firing = {alerts_mod.fingerprint_of(a.labels) for a in alerts if a.status == "firing"}
    wanted = dict.fromkeys(firing, "firing")
    for alert in alerts:
        fingerprint = alerts_mod.fingerprint_of(alert.labels)
        if alert.status == "resolved" and fingerprint in firing:
            wanted[fingerprint] = "resolved"
    return wanted


def wait_for_alerts(
    store: Store, alerts: Sequence[Alert], *, timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll the store until every alert has arrived in its final status; fingerprint -> row."""
    wanted = expected_statuses(alerts)
    deadline = time.monotonic() + timeout
    while True:
        rows = {r["fingerprint"]: r for r in store.list_alerts(limit=10_000)}
        missing = [fp for fp, status in wanted.items() if rows.get(fp, {}).get("status") != status]
        if not missing:
            return rows
        if time.monotonic() >= deadline:
            names = {alerts_mod.fingerprint_of(a.labels): a.labels["alertname"] for a in alerts}
            late = ", ".join(f"{names[fp]} ({wanted[fp]})" for fp in missing)
            raise EvalError(
                f"alerts did not reach the bot through Alertmanager within {timeout:.0f}s: {late}"
            )
        time.sleep(0.05)  # poll interval of the loop above, bounded by the deadline


def first_firing(alerts: Sequence[Alert]) -> Alert | None:
    """The alert eval diagnoses: the first firing one in the file, preferring one that stays
    firing (a firing alert whose resolved twin follows is over, and resolutions are never
    scored)."""
    wanted = expected_statuses(alerts)
    firing = [a for a in alerts if a.status == "firing"]
    still = [a for a in firing if wanted[alerts_mod.fingerprint_of(a.labels)] == "firing"]
    chosen = still or firing
    return chosen[0] if chosen else None


def _trigger(scenario: Scenario, rows: Mapping[str, Mapping[str, Any]]) -> Trigger | None:
    alert = first_firing(scenario.alerts)
    if alert is not None:
        return service.trigger_from_alert(rows[alerts_mod.fingerprint_of(alert.labels)])
    if scenario.question:
        return Trigger(kind="question", question=scenario.question)
    return None


@dataclass
class Entry:
    """One scenario's result, as ``--json`` prints it."""

    name: str
    passed: bool
    runbook: str | None = None
    findings: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """The bot's time on the scored answer (diagnosis, plus the daily checks when they had to
    be run separately); lab start-up and alert delivery are in ``lab_seconds``."""
    lab_seconds: float = 0.0
    requests: int = 0
    """Backend requests the diagnosis made."""
    unreachable: list[str] = field(default_factory=list)
    file: str = ""
    llm_calls: int | None = None
    """With an LLM: model calls the agent made (None on the deterministic path)."""
    prompt_tokens: int | None = None
    """With an LLM: prompt tokens over all calls, as the server's ``usage`` reported them."""
    prompt_tokens_max: int | None = None
    """With an LLM: the largest single call's prompt tokens."""
    mode: str | None = None
    """With an LLM: who answered, ``llm`` or ``rules`` (the model was unavailable)."""
    fallback: str | None = None
    """With an LLM that could not help: why the runbook detectors answered alone."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["lab_seconds"] = round(self.lab_seconds, 3)
        if self.llm_calls is None:  # the deterministic path's entry has no LLM keys
            for key in ("llm_calls", "prompt_tokens", "prompt_tokens_max", "mode", "fallback"):
                del data[key]
        return data


def run_file(path: Path, *, llm: Llm | None = None) -> Entry:
    """Load and evaluate one file; never raises for a bad scenario or a crash."""
    try:
        scenario = loader.load_file(path)
    except loader.ScenarioError as e:
        failures = [f"not a valid scenario: {problem}" for problem in e.problems]
        return Entry(name=path.stem, passed=False, failures=failures, file=str(path))
    try:
        entry = run_scenario(scenario) if llm is None else run_scenario_llm(scenario, llm)
    except Exception as e:  # one scenario's crash must not end the eval
        entry = Entry(name=scenario.name, passed=False, failures=[f"error: {describe(e)}"])
    entry.file = str(path)
    return entry


def run_scenario(scenario: Scenario) -> Entry:
    """Lab up, alerts through Alertmanager, diagnose, score."""
    with session(scenario) as s:
        diagnoser = s.diagnoser()
        started = time.monotonic()
        diagnosis = diagnoser.diagnose(s.trigger) if s.trigger is not None else None
        checks = list(diagnosis.checks) if diagnosis is not None else []
        if scenario.expect.checks and not checks:
            checks = diagnoser.checks()
        seconds = time.monotonic() - started
    return entry_for(scenario, diagnosis, checks, seconds=seconds, lab_seconds=s.lab_seconds)


def run_scenario_llm(scenario: Scenario, llm: Llm) -> Entry:
    """Lab up (with the scripted model unless ``llm`` has a URL), the agent answers, scored."""
    with session(scenario, llm=llm) as s:
        return agent_entry(s)


def agent_entry(s: Session) -> Entry:
    """Let the agent answer the session's trigger and score its diagnosis: the detectors'
    findings plus the model's, the runbook the engine selected, the proposals of both."""
    diagnoser = s.diagnoser()
    started = time.monotonic()
    answer = s.agent(diagnoser).answer(s.trigger) if s.trigger is not None else None
    diagnosis = answer.diagnosis if answer is not None else None
    checks = list(diagnosis.checks) if diagnosis is not None else []
    if s.scenario.expect.checks and not checks:
        checks = diagnoser.checks()
    seconds = time.monotonic() - started
    entry = entry_for(s.scenario, diagnosis, checks, seconds=seconds, lab_seconds=s.lab_seconds)
    return with_answer(entry, answer)


def with_answer(entry: Entry, answer: Answer | None) -> Entry:
    """The entry with the agent's model accounting; a fallback fails it, because eval with an
    LLM scores the agent path and the model did not take part."""
    entry.llm_calls, tokens = (answer.llm_calls, answer.prompt_tokens) if answer else (0, [])
    entry.prompt_tokens, entry.prompt_tokens_max = sum(tokens), max(tokens, default=0)
    if answer is not None:
        entry.mode, entry.fallback = answer.diagnosis.mode, answer.fallback
    if entry.fallback:
        entry.failures.append(f"llm: {entry.fallback}")
        entry.passed = False
    return entry


def entry_for(
    scenario: Scenario,
    diagnosis: Diagnosis | None,
    checks: Sequence[CheckResult],
    *,
    seconds: float,
    lab_seconds: float,
) -> Entry:
    """Score a diagnosis (None: nothing to diagnose) and the checks against ``expect``."""
    outcome = outcome_of(diagnosis, checks)
    failures = score.failures(scenario.expect, outcome)
    return Entry(
        name=scenario.name,
        passed=not failures,
        runbook=outcome.runbook,
        findings=list(outcome.findings),
        fixes=list(outcome.fixes),
        checks=dict(outcome.checks),
        failures=failures,
        seconds=seconds,
        lab_seconds=lab_seconds,
        requests=diagnosis.requests if diagnosis is not None else 0,
        unreachable=list(diagnosis.unreachable) if diagnosis is not None else [],
    )


def outcome_of(diagnosis: Diagnosis | None, checks: Sequence[CheckResult]) -> score.Outcome:
    """What scoring needs from a diagnosis."""
    if diagnosis is None:
        return score.Outcome(
            checks={c.id: c.status for c in checks}, check_values={c.id: c.value for c in checks}
        )
    return score.Outcome(
        runbook=diagnosis.runbook,
        findings=diagnosis.codes(),
        fixes=[f"{p.code}@{p.target}" for p in diagnosis.proposals],
        refusals={f"{r.code}@{r.target}": r.why for r in diagnosis.refusals},
        checks={c.id: c.status for c in checks},
        check_values={c.id: c.value for c in checks},
    )


def describe(error: BaseException) -> str:
    """``Type: message (at file.py:line in function)``: enough to find where it broke."""
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        where = f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return f"{type(error).__name__}: {error}{where}"


def summary(entries: Sequence[Entry]) -> dict[str, Any]:
    passed = sum(e.passed for e in entries)
    total = len(entries)
    return {"total": total, "passed": passed, "pass_rate": round(passed / total, 4) if total else 0}


def run(
    files: Sequence[Path],
    *,
    on_entry: Callable[[Entry], None] | None = None,
    llm: Llm | None = None,
) -> list[Entry]:
    """Evaluate every file in order; ``on_entry`` sees each result as soon as it exists."""
    entries: list[Entry] = []
    for path in files:
        entry = run_file(path, llm=llm)
        entries.append(entry)
        if on_entry is not None:
            on_entry(entry)
    return entries


def report(entries: Sequence[Entry]) -> dict[str, Any]:
    """The ``--json`` object: ``{"scenarios": [...], "summary": {...}}``."""
    return {"scenarios": [e.to_json() for e in entries], "summary": summary(entries)}


HEADER = f"{'SCENARIO':<44} {'RESULT':<6} {'RUNBOOK':<32} {'SECONDS':>7}"


def row(entry: Entry) -> str:
    """One table row (with an LLM, its calls and largest prompt after it), and under a failed
    one each failure on its own line."""
    line = (
        f"{entry.name:<44} {'PASS' if entry.passed else 'FAIL':<6} "
        f"{entry.runbook or '-':<32} {entry.seconds:>7.2f}"
    )
    if entry.llm_calls is not None:
        calls = f"{entry.llm_calls} LLM call{'' if entry.llm_calls == 1 else 's'}"
        line += f"  {calls}, largest prompt {entry.prompt_tokens_max} tokens"
    return "\n".join([line, *(f"    - {failure}" for failure in entry.failures)])


def footer(entries: Sequence[Entry]) -> str:
    s = summary(entries)
    line = f"{s['passed']}/{s['total']} passed ({s['pass_rate']:.0%})"
    used = [e for e in entries if e.llm_calls is not None]
    if used:
        calls = max(e.llm_calls or 0 for e in used)
        largest = max(e.prompt_tokens_max or 0 for e in used)
        line += f"; at most {calls} LLM calls per answer, largest prompt {largest} tokens"
    return line
