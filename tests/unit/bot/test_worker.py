"""The worker on the real path: Alertmanager → the bot's webhook → the inbox → a diagnosis,
once per alert however often the job is done, with failures retried and then recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import server
from bot.config import Settings
from bot.diagnose import history
from bot.diagnose.model import Diagnosis, Trigger
from bot.diagnose.service import Diagnoser, trigger_from_alert
from bot.store import Store
from bot.worker import AlertWorker
from lab import up
from lab.scenario import loader
from tests.conftest import WaitFor

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "worker-test-token"


@dataclass
class Running:
    lab: up.Lab
    store: Store
    diagnoser: Diagnoser


class Clock:
    """A store clock the test moves, so lease expiry needs no waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    scenario = loader.load_file(ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml")
    db = tmp_path_factory.mktemp("worker") / "opsbot.sqlite"
    with up.Lab(scenario) as lab, pytest.MonkeyPatch.context() as mp:
        store = Store(db)
        # The server needs only the token before the lab runs; the rest comes from the lab.
        bot = server.serve(
            Settings(webhook_token=TOKEN, db_path=db, cluster_name=scenario.cluster.name),
            store,
            host="127.0.0.1",
            port=0,
        )
        try:
            lab.start(webhook_url=f"{bot.url}/alertmanager", webhook_token=TOKEN)
            for key, value in lab.env().items():
                if key.startswith("AWS_"):
                    mp.setenv(key, value)
            settings = lab.settings(webhook_token=TOKEN, db_path=db)
            yield Running(lab, store, Diagnoser(settings, store=store))
        finally:
            bot.stop()
            store.close()


def test_a_delivered_alert_is_diagnosed_once(running: Running, wait_for: WaitFor) -> None:
    firing = [a for a in running.lab.scenario.alerts if a.status == "firing"]
    wait_for(lambda: running.store.count_jobs() >= len(firing), timeout=30)
    worker = AlertWorker(running.store, running.diagnoser, name="w1")
    done = worker.run_once()
    assert done is not None and done.outcome == "diagnosed", done
    assert done.diagnosis is not None
    assert done.diagnosis.trigger.alertname == firing[0].labels["alertname"]
    assert done.diagnosis.runbook == "gpu-oom"
    assert "gpu-oom/kv-cache-pressure" in done.diagnosis.codes()
    assert running.store.job_status(done.job.id) == "done"
    saved = history.for_source(running.store, done.job.dedupe_key)
    assert saved is not None and saved.id == done.diagnosis.id
    while worker.run_once() is not None:  # the rest of the inbox
        pass
    assert running.store.count_jobs("pending") == 0


def test_a_job_done_twice_writes_one_diagnosis(running: Running, tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / "crash.sqlite", clock=clock)
    alert = running.lab.scenario.alerts[0]
    job_id, _ = store.enqueue(
        "alert",
        "alert:fp1:2026-11-28T00:00:00.000000Z:firing",
        {"fingerprint": "fp1", "starts_at": "2026-11-28T00:00:00.000000Z", "status": "firing"},
    )
    _record(store, alert.labels, alert.annotations)
    diagnoser = Diagnoser(running.diagnoser.settings, store=store, box=running.diagnoser.box)
    first = AlertWorker(store, diagnoser, name="dies", lease_seconds=60)
    job = store.claim("dies", kinds=["alert"], lease_seconds=60)
    assert job is not None and job.id == job_id
    # The first worker diagnoses, then dies before marking the job done.
    diagnoser.diagnose(_stored_trigger(store), source_key=job.dedupe_key)
    clock.now += 61  # its lease runs out
    done = AlertWorker(store, diagnoser, name="survivor").run_once()
    assert done is not None and done.outcome == "diagnosed"
    assert store.db.execute("SELECT count(*) FROM diagnoses").fetchone()[0] == 1
    proposals = store.db.execute("SELECT count(*) FROM proposals").fetchone()[0]
    assert done.diagnosis is not None
    assert proposals == len(done.diagnosis.proposals) > 0
    assert first.run_once() is None  # nothing left for anyone
    store.close()


def _stored_trigger(store: Store) -> Trigger:
    row = store.get_alert("fp1", "2026-11-28T00:00:00.000000Z")
    assert row is not None
    return trigger_from_alert(row)


def _record(  # an alert row as intake writes it (intake itself is tested in test_alerts)
    store: Store, labels: dict[str, str], annotations: dict[str, str]
) -> None:
    now = store.clock()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO alerts (fingerprint, starts_at, cluster, alertname, severity, status,"
            " labels, annotations, received_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                "fp1",
                "2026-11-28T00:00:00.000000Z",
                labels.get("cluster", "prod-apne2"),  # the scenario's cluster
                labels["alertname"],
                labels.get("severity", ""),
                "firing",
                json.dumps(labels),
                json.dumps(annotations),
                now,
                now,
            ],
        )


class Broken(Diagnoser):
    """A diagnosis that fails (a bug, a full disk): the job must be retried, then recorded."""

    def diagnose(self, trigger: Trigger, *, source_key: str | None = None) -> Diagnosis:
        raise RuntimeError("disk full")


def test_failures_are_retried_with_backoff_then_recorded(running: Running, tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / "fail.sqlite", clock=clock)
    store.enqueue(
        "alert",
        "alert:fp1:2026-11-28T00:00:00.000000Z:firing",
        {"fingerprint": "fp1", "starts_at": "2026-11-28T00:00:00.000000Z", "status": "firing"},
    )
    _record(store, {"alertname": "GPUMemoryHigh"}, {})
    broken = Broken(running.diagnoser.settings, store=store, box=running.diagnoser.box)
    worker = AlertWorker(store, broken, max_attempts=3, retry_base_seconds=10)
    first = worker.run_once()
    assert first is not None and first.outcome == "retry"
    assert worker.run_once() is None  # not before its backoff
    clock.now += 10
    second = worker.run_once()
    assert second is not None and second.outcome == "retry"
    clock.now += 19
    assert worker.run_once() is None  # the second wait is twice as long
    clock.now += 1
    third = worker.run_once()
    assert third is not None and third.outcome == "failed"
    assert store.job_status(third.job.id) == "failed"
    error = store.db.execute("SELECT last_error FROM jobs").fetchone()[0]
    assert "disk full" in error
    store.close()


def test_an_unknown_cluster_fails_at_once_and_resolved_alerts_are_skipped(
    running: Running, tmp_path: Path
) -> None:
    store = Store(tmp_path / "cluster.sqlite")
    store.enqueue(
        "alert",
        "alert:fp1:2026-11-28T00:00:00.000000Z:firing",
        {"fingerprint": "fp1", "starts_at": "2026-11-28T00:00:00.000000Z", "status": "firing"},
    )
    _record(store, {"alertname": "GPUMemoryHigh", "cluster": "elsewhere"}, {})
    store.enqueue("alert", "alert:fp2:x:resolved", {"fingerprint": "fp2", "status": "resolved"})
    worker = AlertWorker(store, Diagnoser(running.diagnoser.settings, store=store))
    failed = worker.run_once()
    assert failed is not None and failed.outcome == "failed"
    assert "elsewhere" in (failed.error or "")
    skipped = worker.run_once()
    assert skipped is not None and skipped.outcome == "skipped"
    assert store.job_status(skipped.job.id) == "done"
    store.close()
