"""The bot's own metrics, served at ``GET /metrics`` in Prometheus' text format.

What an SRE watching the bot needs: alerts received, diagnoses by mode, model calls and their
latency, tool errors per backend (a source going down shows here first). Slack API errors are
still to come (issue 7).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

ALERTS_RECEIVED = Counter(
    "opsbot_alerts_received_total", "Alerts received from Alertmanager", ["status"]
)
DIAGNOSES = Counter("opsbot_diagnoses_total", "Diagnoses made", ["mode"])
LLM_CALLS = Counter("opsbot_llm_calls_total", "Model calls made by the agent")
LLM_FALLBACKS = Counter("opsbot_llm_fallbacks_total", "Answers given by the detectors alone")
ANSWER_SECONDS = Histogram(
    "opsbot_answer_seconds",
    "Time to answer a trigger (detectors and model)",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)
TOOL_ERRORS = Counter("opsbot_tool_errors_total", "Tool calls that failed", ["source", "kind"])
SLACK_ERRORS = Counter(
    "opsbot_slack_api_errors_total", "Slack Web API calls that failed", ["method"]
)


def exposition() -> tuple[bytes, str]:
    """The current metrics and their content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
