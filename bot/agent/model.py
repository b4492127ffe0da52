"""The bot's own model: ChatOpenAI on vLLM's OpenAI-compatible API, and its context window.

Deterministic (temperature 0) and bounded: ``max_completion_tokens``, a timeout per call and
no retry inside the SDK, so a failed call falls back to the runbook detectors at once instead
of waiting out a second timeout (the next question tries the model again). Honest about its
size: the context window comes from the configuration or from the server (vLLM reports
``max_model_len`` in ``/v1/models``); a server that answers without it makes the bot assume
8,192 tokens and log that it did; a server that does not answer is a model failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import openai
from langchain_openai import ChatOpenAI

from bot import logs
from bot.config import Settings

log = logs.get("opsbot.agent")

ASSUMED_CONTEXT = 8192
"""Used only when neither the configuration nor the server gives the window (and logged)."""


@dataclass(frozen=True)
class Window:
    """How many tokens one request may hold, and where that number came from."""

    tokens: int
    source: str
    """``config``, ``server`` or ``assumed``."""


def chat_model(settings: Settings) -> ChatOpenAI:
    """The chat model the agent calls; raises ValueError when no LLM is configured."""
    if not settings.llm_base_url:
        raise ValueError("no LLM configured (OPSBOT_LLM_BASE_URL is empty)")
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        temperature=0,
        max_completion_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout_seconds,
        max_retries=0,
        streaming=settings.llm_streaming,
        stream_usage=True,
    )


def context_window(settings: Settings) -> Window:
    """The configured window, else the served model's ``max_model_len``, else an assumption."""
    if settings.llm_context_tokens:
        return Window(settings.llm_context_tokens, "config")
    if settings.llm_base_url:
        client = openai.OpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout=settings.llm_timeout_seconds,
            max_retries=0,
        )
        try:
            served = list(client.models.list())
            ours = [m for m in served if m.id == settings.llm_model] or (
                served if len(served) == 1 else []
            )
            for model in ours:
                length = (model.model_extra or {}).get("max_model_len")
                if isinstance(length, int) and length > 0:
                    return Window(length, "server")
        except (openai.APIConnectionError, openai.InternalServerError):
            raise  # the model is down: the caller falls back now, not after a chat timeout
        except openai.OpenAIError as e:  # e.g. a server without /v1/models (404)
            log.warning("agent.context_window_unknown", error=str(e))
        finally:
            client.close()
    log.warning(
        "agent.context_window_assumed",
        tokens=ASSUMED_CONTEXT,
        hint="set OPSBOT_LLM_CONTEXT_TOKENS to the served model's max_model_len",
    )
    return Window(ASSUMED_CONTEXT, "assumed")
