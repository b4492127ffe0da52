"""The one AWS account and region the lab pretends to be, and AWS's wire time formats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lab.kube import nodes
from lab.scenario import models

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "ap-northeast-2"


def region(scenario: models.Scenario) -> str:
    """The region of the cluster's first node (its zone without the letter), else Seoul."""
    first = scenario.cluster.nodes[:1]
    return nodes.region(first[0].zone) if first else DEFAULT_REGION


def iso8601(moment: datetime) -> str:
    """EC2's XML timestamps: ``2024-05-15T06:00:00.000Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def epoch(moment: datetime) -> float:
    """JSON-protocol timestamps: seconds since the epoch."""
    return moment.timestamp()


def request_id() -> str:
    return str(uuid.uuid4())
