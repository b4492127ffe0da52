"""A scenario's log lines as CloudWatch log groups, streams and events at fixed times.

``now`` is passed in so tests are deterministic: a line ``at: -10m`` is stamped ten minutes
before it. Events are kept oldest first per stream, as CloudWatch stores them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lab.scenario.models import LogLine, Scenario

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "ap-northeast-2"
INGESTION_DELAY_MS = 200
"""How long after its timestamp an event counts as ingested (never after now)."""


@dataclass(frozen=True)
class LogEvent:
    group: str
    stream: str
    timestamp: int
    """Epoch milliseconds."""
    ingestion_time: int
    message: str
    seq: int
    """Position in the whole store, oldest first: the stable tie-break and the event id."""
    account: str = DEFAULT_ACCOUNT

    @property
    def event_id(self) -> str:
        return f"{self.timestamp:d}{self.seq:012d}"

    @property
    def ptr(self) -> str:
        """An opaque pointer, like AWS's ``@ptr``; ``LogStore.by_ptr`` resolves it."""
        return base64.urlsafe_b64encode(f"lab:{self.seq}".encode()).decode().rstrip("=")

    @property
    def size(self) -> int:
        return len(self.message.encode())


@dataclass
class LogGroup:
    name: str
    creation_time: int
    streams: dict[str, list[LogEvent]] = field(default_factory=dict)

    def events(self) -> list[LogEvent]:
        return [e for stream in self.streams.values() for e in stream]

    @property
    def stored_bytes(self) -> int:
        return sum(e.size for e in self.events())


class LogStore:
    """Log groups by name, and every event by its pointer."""

    def __init__(self, groups: Iterable[LogGroup], *, account: str = DEFAULT_ACCOUNT) -> None:
        self.account = account
        self.groups = {g.name: g for g in sorted(groups, key=lambda g: g.name)}
        self._by_seq = {e.seq: e for g in self.groups.values() for e in g.events()}

    @classmethod
    def from_lines(
        cls,
        logs: dict[str, list[LogLine]],
        *,
        now: datetime | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> LogStore:
        now_ms = int((now or datetime.now(tz=UTC)).timestamp() * 1000)
        stamped = [
            (name, line, now_ms - int(line.at.total_seconds() * 1000))
            for name, lines in logs.items()
            for line in lines
        ]
        stamped.sort(key=lambda item: item[2])  # stable: file order breaks ties
        groups = {name: LogGroup(name, now_ms) for name in logs}
        for seq, (name, line, at) in enumerate(stamped):
            group = groups[name]
            group.creation_time = min(group.creation_time, at - 3_600_000)
            event = LogEvent(
                group=name,
                stream=line.stream,
                timestamp=at,
                ingestion_time=min(at + INGESTION_DELAY_MS, now_ms),
                message=line.message,
                seq=seq,
                account=account,
            )
            group.streams.setdefault(line.stream, []).append(event)
        return cls(groups.values(), account=account)

    @classmethod
    def from_scenario(
        cls, scenario: Scenario, *, now: datetime | None = None, account: str = DEFAULT_ACCOUNT
    ) -> LogStore:
        return cls.from_lines(scenario.logs, now=now, account=account)

    def by_ptr(self, ptr: str) -> LogEvent | None:
        try:
            text = base64.urlsafe_b64decode(ptr + "=" * (-len(ptr) % 4)).decode()
            prefix, _, seq = text.partition(":")
            return self._by_seq.get(int(seq)) if prefix == "lab" else None
        except ValueError:
            return None

    def query_events(self, groups: Iterable[str], start_ms: int, end_ms: int) -> list[LogEvent]:
        """Events of ``groups`` with ``start_ms <= timestamp < end_ms``, oldest first."""
        found = [
            e
            for name in groups
            for e in self.groups[name].events()
            if start_ms <= e.timestamp < end_ms
        ]
        return sorted(found, key=lambda e: e.seq)
