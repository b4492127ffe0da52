"""The bot's memory: SQLite (WAL) through sqlite-utils.

Every inbound item is written here before it is acknowledged (``jobs``), so a restart loses
nothing and a redelivery is recognised by its dedupe key. Everything written passes redaction
first. The schema is created or upgraded at open, one numbered migration at a time.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.migrations import MIGRATIONS
from tools import redact

__all__ = ["MIGRATIONS", "AlertRecord", "Job", "Store", "dumps"]

Clock = Callable[[], float]


@dataclass(frozen=True)
class Job:
    """One unit of work taken from the inbox."""

    id: int
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class AlertRecord:
    """One Alertmanager alert as intake stores it; keyed by (fingerprint, starts_at)."""

    fingerprint: str
    starts_at: str
    status: str
    """firing | resolved"""
    alertname: str
    severity: str
    cluster: str
    labels: dict[str, str]
    annotations: dict[str, str]
    group_key: str
    ends_at: str | None


def dumps(value: Any) -> str:
    """JSON for a column, redacted first: nothing secret reaches the file."""
    return json.dumps(redact.redact_data(value), sort_keys=True, default=str)


class Store:
    """SQLite store; one connection per thread, all sharing the file (WAL)."""

    def __init__(
        self, path: Path | str, *, clock: Clock = time.time, busy_seconds: float = 30
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self._busy_seconds = busy_seconds
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_seconds, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """An immediate (write-locking) transaction on this thread's connection."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        self.db.enable_wal()
        with self.transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this opsbot "
                    f"({len(MIGRATIONS)}); upgrade opsbot"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    # -- the inbox ---------------------------------------------------------------------------
    def enqueue(self, kind: str, dedupe_key: str, payload: dict[str, Any]) -> tuple[int, bool]:
        """Record an inbound item; returns (job id, False) when the key was seen before."""
        with self.transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE dedupe_key = ?", [dedupe_key]).fetchone()
            if row:
                return int(row[0]), False
            cursor = db.execute(
                "INSERT INTO jobs (kind, dedupe_key, payload, created_at) VALUES (?, ?, ?, ?)",
                [kind, dedupe_key, dumps(payload), self.clock()],
            )
            return int(cursor.lastrowid or 0), True

    def claim(
        self, worker: str, *, kinds: list[str] | None = None, lease_seconds: float = 300
    ) -> Job | None:
        """Take the oldest ready job (pending, or running with an expired lease)."""
        now = self.clock()
        wanted = json.dumps(kinds) if kinds else None
        with self.transaction() as db:
            row = db.execute(
                "SELECT id, kind, dedupe_key, payload, attempts FROM jobs "
                "WHERE ((status = 'pending' AND not_before <= ?) "
                "OR (status = 'running' AND lease_until < ?)) "
                "AND (? IS NULL OR kind IN (SELECT value FROM json_each(?))) "
                "ORDER BY id LIMIT 1",
                [now, now, wanted, wanted],
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                [worker, now + lease_seconds, row[0]],
            )
        return Job(
            id=row[0],
            kind=row[1],
            dedupe_key=row[2],
            payload=json.loads(row[3]),
            attempts=row[4] + 1,
        )

    def finish(self, job_id: int) -> None:
        self.db.execute(
            "UPDATE jobs SET status = 'done', finished_at = ?, lease_until = NULL WHERE id = ?",
            [self.clock(), job_id],
        )

    def fail(self, job_id: int, error: str, *, retry_in: float | None = None) -> None:
        """Record a failure; with ``retry_in`` the job becomes pending again after that long."""
        status = "pending" if retry_in is not None else "failed"
        self.db.execute(
            "UPDATE jobs SET status = ?, last_error = ?, not_before = ?, lease_until = NULL, "
            "finished_at = ? WHERE id = ?",
            [
                status,
                redact.redact(error),
                self.clock() + (retry_in or 0),
                None if retry_in is not None else self.clock(),
                job_id,
            ],
        )

    def job_status(self, job_id: int) -> str | None:
        row = self.db.execute("SELECT status FROM jobs WHERE id = ?", [job_id]).fetchone()
        return None if row is None else str(row[0])

    def count_jobs(self, status: str | None = None) -> int:
        if status is None:
            return int(self.db.execute("SELECT count(*) FROM jobs").fetchone()[0])
        row = self.db.execute("SELECT count(*) FROM jobs WHERE status = ?", [status]).fetchone()
        return int(row[0])

    # -- alerts ------------------------------------------------------------------------------
    def record_alert(
        self, alert: AlertRecord, *, kind: str, dedupe_key: str, payload: dict[str, Any]
    ) -> int | None:
        """Store an alert and enqueue its job in one transaction (a crash leaves neither).

        Returns the new job's id, or None when ``dedupe_key`` was seen before or the alert is
        already resolved (a late firing redelivery never re-opens it). A repeat refreshes the
        row's annotations and ``updated_at``.
        """
        now = self.clock()
        fields = {
            "cluster": alert.cluster,
            "alertname": alert.alertname,
            "severity": alert.severity,
            "status": alert.status,
            "labels": dumps(alert.labels),
            "annotations": dumps(alert.annotations),
            "group_key": alert.group_key,
            "ends_at": alert.ends_at,
            "updated_at": now,
        }
        key = [alert.fingerprint, alert.starts_at]
        with self.transaction() as db:
            row = db.execute(
                "SELECT status FROM alerts WHERE fingerprint = ? AND starts_at = ?", key
            ).fetchone()
            if row is None:
                columns = ["fingerprint", "starts_at", "received_at", *fields]
                db.execute(
                    f"INSERT INTO alerts ({', '.join(columns)}) "  # noqa: S608 - fixed names
                    f"VALUES ({', '.join('?' * len(columns))})",
                    [*key, now, *fields.values()],
                )
            elif row[0] == "resolved" and alert.status != "resolved":
                return None
            else:
                db.execute(
                    f"UPDATE alerts SET {', '.join(f'{c} = ?' for c in fields)} "  # noqa: S608
                    "WHERE fingerprint = ? AND starts_at = ?",
                    [*fields.values(), *key],
                )
            if db.execute("SELECT 1 FROM jobs WHERE dedupe_key = ?", [dedupe_key]).fetchone():
                return None
            cursor = db.execute(
                "INSERT INTO jobs (kind, dedupe_key, payload, created_at) VALUES (?, ?, ?, ?)",
                [kind, dedupe_key, dumps(payload), now],
            )
            return int(cursor.lastrowid or 0)

    def get_alert(self, fingerprint: str, starts_at: str) -> dict[str, Any] | None:
        """One stored alert, labels and annotations decoded."""
        rows = self._alert_rows("WHERE fingerprint = ? AND starts_at = ?", [fingerprint, starts_at])
        return rows[0] if rows else None

    def list_alerts(
        self, *, status: str | None = None, cluster: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Stored alerts, most recently updated first (e.g. what is firing now)."""
        where = "WHERE (? IS NULL OR status = ?) AND (? IS NULL OR cluster = ?)"
        return self._alert_rows(
            f"{where} ORDER BY updated_at DESC, rowid DESC LIMIT ?",
            [status, status, cluster, cluster, limit],
        )

    def _alert_rows(self, tail: str, params: list[Any]) -> list[dict[str, Any]]:
        columns = (
            "fingerprint, starts_at, cluster, alertname, severity, status, labels, annotations, "
            "group_key, ends_at, received_at, updated_at"
        )
        cursor = self.db.execute(f"SELECT {columns} FROM alerts {tail}", params)  # noqa: S608
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            row["labels"] = json.loads(row["labels"])
            row["annotations"] = json.loads(row["annotations"])
        return rows

    # -- the audit log -----------------------------------------------------------------------
    def audit(
        self, *, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
    ) -> int:
        """Append an audit entry (who, what, on which target, with details such as the diff)."""
        cursor = self.db.execute(
            "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            [self.clock(), redact.redact(actor), action, target, dumps(detail or {})],
        )
        return int(cursor.lastrowid or 0)

    def audit_entries(self, *, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        where, params = ("WHERE target = ?", [target]) if target else ("", [])
        rows = self.db.execute(
            f"SELECT id, at, actor, action, target, detail FROM audit {where} "  # noqa: S608
            "ORDER BY id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [
            {
                "id": r[0],
                "at": r[1],
                "actor": r[2],
                "action": r[3],
                "target": r[4],
                "detail": json.loads(r[5]),
            }
            for r in rows
        ]

    def close(self) -> None:
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None
