"""The Slack Web API client the bot posts with: one per process, retries built in.

slack-sdk's own retry handlers do what Slack asks: on 429 wait ``Retry-After`` and send again
(the same call, so nothing is posted twice), on 5xx and dropped connections back off and retry
a few times. The base URL is configurable so the lab's fake Slack can stand in.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.config import Settings

RETRIES = 3


def web_client(settings: Settings, *, timeout: float = 10.0) -> WebClient:
    """A WebClient with the bot token and the retry handlers; ValueError without a token."""
    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set: the bot cannot post to Slack")
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=int(timeout),
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=RETRIES),
            ServerErrorRetryHandler(max_retry_count=RETRIES),
            ConnectionErrorRetryHandler(max_retry_count=RETRIES),
        ],
    )
