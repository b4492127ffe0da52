"""Diagnoses and their proposals in the store: what the bot concluded, kept for review.

A diagnosis is written with its proposals in one transaction, so a proposal never exists
without the evidence that led to it; the approval flow later reads proposals by id. Everything
passes redaction on its way in (``store.dumps``).
"""

from __future__ import annotations

import json
from typing import Any

from bot import store as store_mod
from bot.diagnose.model import Diagnosis

PROPOSER = "opsbot"
"""Who proposes what the detectors suggested (the two-person rule counts it as a person)."""


def save(
    store: store_mod.Store,
    diagnosis: Diagnosis,
    *,
    expiry_minutes: int,
    source_key: str | None = None,
) -> int:
    """Persist ``diagnosis`` and its proposals; returns the diagnosis id.

    ``source_key`` names what it answers (an alert job's dedupe key): a second save for the same
    key returns the first id and writes nothing, so a redelivered job never doubles proposals.
    """
    now = store.clock()
    summary = diagnosis.findings[0].summary if diagnosis.codes() else ""
    with store.transaction() as db:
        if source_key is not None:
            known = db.execute(
                "SELECT id FROM diagnoses WHERE source_key = ?", [source_key]
            ).fetchone()
            if known is not None:
                return int(known[0])
        cursor = db.execute(
            "INSERT INTO diagnoses (trigger, runbook, mode, findings, summary, detail, source_key,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                store_mod.dumps(diagnosis.trigger.model_dump()),
                diagnosis.runbook,
                diagnosis.mode,
                store_mod.dumps([f.model_dump() for f in diagnosis.findings]),
                summary,
                store_mod.dumps(diagnosis.model_dump(exclude={"trigger", "findings", "id"})),
                source_key,
                now,
            ],
        )
        diagnosis_id = int(cursor.lastrowid or 0)
        for p in diagnosis.proposals:
            db.execute(
                "INSERT INTO proposals (diagnosis_id, fix_code, target, patch, patch_hash, reason,"
                " proposer, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    diagnosis_id,
                    p.code,
                    p.target,
                    json.dumps(p.patch, sort_keys=True),
                    p.patch_hash,
                    p.reason,
                    PROPOSER,
                    now,
                    now + expiry_minutes * 60,
                ],
            )
    return diagnosis_id


def load(store: store_mod.Store, diagnosis_id: int) -> Diagnosis | None:
    """The diagnosis as saved (proposals included), or None."""
    row = store.db.execute(
        "SELECT trigger, findings, detail FROM diagnoses WHERE id = ?", [diagnosis_id]
    ).fetchone()
    if row is None:
        return None
    detail: dict[str, Any] = json.loads(row[2])
    detail.update(trigger=json.loads(row[0]), findings=json.loads(row[1]), id=diagnosis_id)
    return Diagnosis.model_validate(detail)


def for_source(store: store_mod.Store, source_key: str) -> Diagnosis | None:
    """The diagnosis saved for ``source_key`` (e.g. an alert job), if any."""
    row = store.db.execute("SELECT id FROM diagnoses WHERE source_key = ?", [source_key]).fetchone()
    return None if row is None else load(store, int(row[0]))


def proposals(store: store_mod.Store, diagnosis_id: int) -> list[dict[str, Any]]:
    """The proposal rows of a diagnosis, oldest first, with their patch parsed."""
    rows = store.db.execute(
        "SELECT id, fix_code, target, patch, patch_hash, reason, proposer, status, expires_at"
        " FROM proposals WHERE diagnosis_id = ? ORDER BY id",
        [diagnosis_id],
    ).fetchall()
    keys = ("id", "code", "target", "patch", "patch_hash", "reason", "proposer", "status")
    return [
        {**dict(zip(keys, r[:8], strict=True)), "patch": json.loads(r[3]), "expires_at": r[8]}
        for r in rows
    ]
