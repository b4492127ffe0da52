"""The store on a real SQLite file: schema, the inbox's dedupe and leases, audit, redaction."""

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from bot import store as store_mod
from bot.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Store:
    return Store(tmp_path / "opsbot.sqlite", clock=clock)


def test_schema_is_created_in_wal_mode(store: Store) -> None:
    assert store.schema_version() == len(store_mod.MIGRATIONS)
    tables = set(store.db.table_names())
    for table in ["alerts", "threads", "diagnoses", "proposals", "approvals", "audit", "jobs"]:
        assert table in tables
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path, clock: FakeClock) -> None:
    first = Store(tmp_path / "s.sqlite", clock=clock)
    first.enqueue("alert", "fp-1", {"n": 1})
    first.close()
    again = Store(tmp_path / "s.sqlite", clock=clock)
    assert again.count_jobs() == 1
    assert again.schema_version() == len(store_mod.MIGRATIONS)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(store_mod.MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this opsbot"):
        Store(path)


def test_redelivery_is_recognised(store: Store) -> None:
    job_id, created = store.enqueue("alertmanager", "group-a:fp1:2026-11-28T00:00Z", {"x": 1})
    again, created_again = store.enqueue("alertmanager", "group-a:fp1:2026-11-28T00:00Z", {"x": 2})
    assert created and not created_again
    assert again == job_id
    assert store.count_jobs() == 1


def test_claim_finish_and_lease_expiry(store: Store, clock: FakeClock) -> None:
    store.enqueue("alert", "a", {"n": 1})
    store.enqueue("slack", "b", {"n": 2})
    job = store.claim("w1", kinds=["slack"], lease_seconds=60)
    assert job is not None and job.kind == "slack" and job.payload == {"n": 2}
    first = store.claim("w1", lease_seconds=60)
    assert first is not None and first.dedupe_key == "a"
    assert store.claim("w2") is None  # both are leased
    clock.now += 61  # w1 died without finishing: its leases run out
    retaken = store.claim("w2")
    assert retaken is not None and retaken.id == first.id and retaken.attempts == 2
    store.finish(retaken.id)
    assert store.job_status(retaken.id) == "done"


def test_failed_job_retries_after_delay(store: Store, clock: FakeClock) -> None:
    job_id, _ = store.enqueue("alert", "a", {})
    job = store.claim("w")
    assert job is not None
    store.fail(job.id, "Slack said 429", retry_in=30)
    assert store.claim("w") is None
    clock.now += 31
    again = store.claim("w")
    assert again is not None and again.id == job_id
    store.fail(again.id, "gave up")
    assert store.job_status(job_id) == "failed"


def test_concurrent_workers_never_take_the_same_job(store: Store) -> None:
    for n in range(200):
        store.enqueue("alert", f"k{n}", {"n": n})
    taken: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job := store.claim(name)) is not None:
            with lock:
                taken.append(job.id)
            store.finish(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(taken) == sorted(set(taken))
    assert len(taken) == 200
    assert store.count_jobs("done") == 200


def test_a_second_process_sees_committed_jobs(store: Store, tmp_path: Path) -> None:
    store.enqueue("alert", "k", {"n": 1})
    other = sqlite3.connect(tmp_path / "opsbot.sqlite")
    assert other.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1
    other.close()


def test_everything_written_is_redacted(store: Store) -> None:
    store.enqueue(
        "slack", "e1", {"text": "here is my token xoxb-2049871234567-50123456789-abcdefgh"}
    )
    job = store.claim("w")
    assert job is not None
    assert "xoxb-" not in json.dumps(job.payload)
    store.fail(job.id, "auth failed: Authorization: Bearer 0123456789abcdef")
    store.audit(
        actor="U012AB3CD",
        action="fix.applied",
        target="deployment/inference/llama-2-7b",
        detail={"diff": "- 0.95\n+ 0.85", "env": [{"name": "HF_TOKEN", "value": "hf_x"}]},
    )
    raw = (store.path).read_bytes() + Path(f"{store.path}-wal").read_bytes()
    for secret in [b"xoxb-2049871234567", b"0123456789abcdef", b"hf_x"]:
        assert secret not in raw
    entry = store.audit_entries(limit=1)[0]
    assert entry["actor"] == "U012AB3CD"
    assert entry["detail"]["diff"] == "- 0.95\n+ 0.85"


def test_audit_is_newest_first_and_filterable(store: Store, clock: FakeClock) -> None:
    store.audit(actor="bot", action="proposed", target="node/gpu-a")
    clock.now += 1
    store.audit(actor="U1", action="approved", target="node/gpu-a")
    store.audit(actor="U1", action="approved", target="node/gpu-b")
    entries = store.audit_entries(target="node/gpu-a")
    assert [e["action"] for e in entries] == ["approved", "proposed"]
