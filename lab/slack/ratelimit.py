"""Token buckets, so the fake answers ``429 Retry-After`` where Slack would.

Slack's published limits (docs.slack.dev/apis/web-api/rate-limits): ``chat.postMessage`` allows
about one message per second per channel with short bursts tolerated (plus a workspace-wide
limit the fake does not model); other methods sit in tiers, per method per workspace per app:
Tier 1 1+/min, Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min. When limited, Slack answers
HTTP 429 with a ``Retry-After`` header in whole seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    burst: int
    """Calls allowed back to back from a full bucket."""
    per_second: float
    """Refill rate: tokens added per second, up to ``burst``."""


TIER_1 = Limit(burst=1, per_second=1 / 60)
TIER_2 = Limit(burst=20, per_second=20 / 60)
TIER_3 = Limit(burst=50, per_second=50 / 60)
TIER_4 = Limit(burst=100, per_second=100 / 60)

POST_MESSAGE_DEFAULT = Limit(burst=5, per_second=1.0)
"""One per second per channel (Slack's figure), with a small burst of 5 (Slack's is unpublished)."""


@dataclass(frozen=True)
class RateLimits:
    """What the fake enforces. ``RateLimits.off()`` for tests that post freely."""

    post_message: Limit | None = POST_MESSAGE_DEFAULT
    """Per channel, for ``chat.postMessage``; None turns it off."""
    methods: dict[str, Limit] = field(default_factory=dict)
    """Per method for the whole workspace, e.g. ``{"views.open": TIER_4}``; none by default."""

    @classmethod
    def off(cls) -> RateLimits:
        return cls(post_message=None)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class Buckets:
    """One bucket per key; not thread-safe (the server calls it under its lock)."""

    _buckets: dict[tuple[str, ...], _Bucket] = field(default_factory=dict)

    def take(self, key: tuple[str, ...], limit: Limit, now: float) -> int:
        """Take a token: 0 when allowed, else the whole seconds to wait (``Retry-After``)."""
        bucket = self._buckets.setdefault(key, _Bucket(tokens=float(limit.burst), updated=now))
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        wait = (1.0 - bucket.tokens) / limit.per_second
        return max(1, math.ceil(wait))

    def reset(self) -> None:
        self._buckets.clear()
