"""The ToolResult envelope and the boundary every tool call goes through.

Errors (the tree below) are raised inside a tool's fetch function, mapped from the SDK's own
exceptions in one place per system (``raise … from e``), and turned into a ``ToolResult`` with
status ``error`` here: nothing raises past the tool boundary. The boundary also owns the
timeout (one deadline for the whole call, retries included), the retries with backoff for
idempotent reads (tenacity), redaction and the output budget.

    ToolError                 (source, message)
    ├── Unavailable           connection refused, DNS, reset: retried
    ├── ServerError           the backend answered 5xx: retried
    ├── Timeout               no answer before the deadline: not retried (the time is gone)
    ├── Rejected              the backend refused the request (bad query, 4xx): its own text
    └── NotFound              the object or resource does not exist
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import tenacity
from pydantic import BaseModel, Field

from tools import budget, redact

Status = Literal["ok", "no_data", "error"]


class ToolError(Exception):
    """A backend problem, said so that a person and a model can act on it."""

    kind = "error"

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class Unavailable(ToolError):
    kind = "unavailable"


class ServerError(ToolError):
    kind = "server-error"


class Timeout(ToolError):
    kind = "timeout"


class Rejected(ToolError):
    kind = "rejected"


class NotFound(ToolError):
    kind = "not-found"


class ToolResult(BaseModel):
    """What one tool call saw: structured data, the rendered text, and how it was obtained."""

    tool: str
    source: str
    """The backend: kubernetes, prometheus, cloudwatch, kubecost, aws."""
    status: Status
    call: str
    """The exact query or API call made (PromQL, Logs Insights query, HTTP path)."""
    text: str
    """Rendered for people and the LLM, within the output budget."""
    data: Any = None
    error: str | None = None
    error_kind: str | None = None
    cluster: str | None = None
    duration_ms: float = 0.0
    truncated: bool = False
    cut: str | None = Field(None, description="What was left out to fit the budget.")

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Output:
    """What a fetch function hands back: data, its rendering, and what was cut."""

    data: Any
    text: str
    no_data: bool = False
    cut: str | None = None


@dataclass(frozen=True)
class Limits:
    """The bounds of one call."""

    timeout: float = 10.0
    """Seconds for the whole call, retries included."""
    output_tokens: int = 2000
    """Budget of the rendered text (about 4 characters a token)."""
    attempts: int = 3

    @property
    def max_chars(self) -> int:
        return self.output_tokens * budget.CHARS_PER_TOKEN


Fetch = Callable[[float], Output]
"""Does the call with at most the given number of seconds, and renders it."""


def run(
    *,
    tool: str,
    source: str,
    call: str,
    fetch: Fetch,
    limits: Limits,
    cluster: str | None = None,
    retry: bool = True,
    redact_data: bool = True,
) -> ToolResult:
    """Call ``fetch`` within the limits and wrap whatever happens in a ToolResult.

    ``redact_data=False`` keeps ``data`` as the backend sent it (the text is redacted anyway):
    only for the fix catalog, which must test the exact values it replaces, never for a result
    the LLM, Slack, logs or the store see.
    """
    started = time.monotonic()
    deadline = started + limits.timeout

    def attempt() -> Output:
        remaining = deadline - time.monotonic()
        if remaining <= 0.01:
            raise Timeout(source, f"no answer within {limits.timeout:g}s")
        return fetch(remaining)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(limits.attempts if retry else 1)
        | tenacity.stop_before_delay(limits.timeout),
        wait=tenacity.wait_exponential(multiplier=0.2, max=2.0),
        retry=tenacity.retry_if_exception_type((Unavailable, ServerError)),
        reraise=True,
    )
    try:
        output = retrying(attempt)
    except ToolError as e:
        message = redact.redact(e.message)
        return ToolResult(
            tool=tool,
            source=source,
            status="error",
            call=redact.redact(call),
            text=f"ERROR from {source} ({e.kind}): {message}",
            error=message,
            error_kind=e.kind,
            cluster=cluster,
            duration_ms=(time.monotonic() - started) * 1000,
        )
    text, hard_cut = budget.fit_text(redact.redact(output.text), limits.max_chars)
    cut = "; ".join(c for c in (output.cut, hard_cut) if c) or None
    return ToolResult(
        tool=tool,
        source=source,
        status="no_data" if output.no_data else "ok",
        call=redact.redact(call),
        text=text,
        data=redact.redact_data(output.data) if redact_data else output.data,
        cluster=cluster,
        duration_ms=(time.monotonic() - started) * 1000,
        truncated=cut is not None,
        cut=cut,
    )
