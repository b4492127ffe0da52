"""The store's schema, one numbered step per version (``PRAGMA user_version``).

A released step is never edited: a change is a new step appended at the end, so every
existing database upgrades in order on start.
"""

from __future__ import annotations

# One entry per schema version; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        lease_until REAL,
        not_before REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX jobs_ready ON jobs (status, not_before);
    CREATE TABLE alerts (
        fingerprint TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        cluster TEXT NOT NULL DEFAULT '',
        alertname TEXT NOT NULL,
        severity TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        group_key TEXT NOT NULL DEFAULT '',
        ends_at TEXT,
        received_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (fingerprint, starts_at)
    );
    CREATE TABLE threads (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        context TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (channel, ts)
    );
    CREATE TABLE diagnoses (
        id INTEGER PRIMARY KEY,
        trigger TEXT NOT NULL,
        runbook TEXT,
        mode TEXT NOT NULL,
        findings TEXT NOT NULL DEFAULT '[]',
        summary TEXT NOT NULL DEFAULT '',
        thread_id INTEGER REFERENCES threads(id),
        created_at REAL NOT NULL
    );
    CREATE TABLE proposals (
        id INTEGER PRIMARY KEY,
        diagnosis_id INTEGER REFERENCES diagnoses(id),
        fix_code TEXT NOT NULL,
        target TEXT NOT NULL,
        patch TEXT NOT NULL,
        patch_hash TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        proposer TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'proposed',
        outcome TEXT,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        proposal_id INTEGER NOT NULL REFERENCES proposals(id),
        patch_hash TEXT NOT NULL,
        approver TEXT NOT NULL,
        decision TEXT NOT NULL,
        decided_at REAL NOT NULL,
        UNIQUE (proposal_id, patch_hash)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE TABLE schedule_runs (
        job TEXT NOT NULL,
        period TEXT NOT NULL,
        ran_at REAL NOT NULL,
        PRIMARY KEY (job, period)
    );
    """,
    """
    ALTER TABLE diagnoses ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE diagnoses ADD COLUMN source_key TEXT;
    CREATE UNIQUE INDEX diagnoses_source ON diagnoses (source_key) WHERE source_key IS NOT NULL;
    CREATE INDEX proposals_diagnosis ON proposals (diagnosis_id);
    """,
    """
    CREATE TABLE conversations (
        thread_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (thread_id, seq)
    );
    """,
    """
    CREATE TABLE slack_messages (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        ts TEXT,
        thread_ts TEXT,
        state TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE slack_events (
        event_id TEXT PRIMARY KEY,
        received_at REAL NOT NULL
    );
    """,
)
