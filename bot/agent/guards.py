"""The agent's bounds, as LangChain middleware around the one loop.

- ``PromptBudget``: before each model call, the request must fit the context window minus the
  answer's room; the oldest tool outputs are cut to a one-line stub first (their pairing with
  the tool call stays, so the conversation stays valid), newest kept.
- ``RefuseRepeats``: an identical tool call (same name, same arguments) is answered with a
  refusal instead of being made again.
- ``MalformedCalls``: a model answer whose tool calls are not valid JSON ends the agent with
  ``MalformedToolCalls``, so the caller falls back to the runbook detectors.
- The step limit is LangChain's ``ModelCallLimitMiddleware`` (``run_limit``, ending gracefully).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

CHARS_PER_TOKEN = 4
"""An estimate before sending; what was really sent is counted from the server's usage."""


class MalformedToolCalls(RuntimeError):
    """The model answered with tool calls whose arguments are not valid JSON."""


def estimate_tokens(messages: Sequence[BaseMessage], tools: Sequence[Any]) -> int:
    """Characters / 4 of the messages' text and the tools' JSON schemas (as sent)."""
    chars = sum(len(str(m.content)) + _calls_chars(m) for m in messages)
    schemas = [t if isinstance(t, dict) else convert_to_openai_tool(t) for t in tools]
    chars += len(json.dumps(schemas, separators=(",", ":")))
    return math.ceil(chars / CHARS_PER_TOKEN)


def _calls_chars(message: BaseMessage) -> int:
    if isinstance(message, AIMessage) and message.tool_calls:
        return len(json.dumps([[c["name"], c["args"]] for c in message.tool_calls]))
    return 0


class PromptBudget(AgentMiddleware):
    """Keeps every request within ``budget`` tokens by cutting the oldest tool outputs."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self.cut = 0
        """Tool outputs cut so far (reported with the answer)."""

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        messages = list(request.messages)
        system = [request.system_message] if request.system_message else []
        tool_indexes = [i for i, m in enumerate(messages) if isinstance(m, ToolMessage)]
        for i in tool_indexes[:-1]:  # oldest first; the newest output is what the model asked for
            if estimate_tokens([*system, *messages], request.tools) <= self.budget:
                break
            old = messages[i]
            assert isinstance(old, ToolMessage)
            stub = f"[output of {old.name} cut to fit the context: {len(str(old.content))} chars]"
            messages[i] = old.model_copy(update={"content": stub, "artifact": None})
            self.cut += 1
        return handler(request.override(messages=messages))


class RefuseRepeats(AgentMiddleware):
    """Answers an identical repeated tool call with a refusal; the first answer still holds."""

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        call = request.tool_call
        key = _key(call["name"], call["args"])
        earlier = {
            _key(c["name"], c["args"])
            for m in request.state["messages"]
            if isinstance(m, AIMessage)
            for c in m.tool_calls
            if c["id"] != call["id"]
        }
        if key in earlier:
            return ToolMessage(
                content="refused: you already made this exact call; use its result above.",
                tool_call_id=call["id"],
                name=call["name"],
                status="error",
            )
        return handler(request)


def _key(name: str, args: Any) -> str:
    return name + json.dumps(args, sort_keys=True, default=str)


class MalformedCalls(AgentMiddleware):
    """Turns tool calls that are not valid JSON into ``MalformedToolCalls`` (the caller falls
    back), instead of LangChain's silent end of the loop."""

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        response = handler(request)
        for message in response.result:
            if isinstance(message, AIMessage) and message.invalid_tool_calls:
                bad = message.invalid_tool_calls[0]
                raise MalformedToolCalls(
                    f"the model's call of {bad.get('name')!r} has arguments that are not JSON: "
                    f"{str(bad.get('args'))[:120]!r}"
                )
        return response


class Meter(AgentMiddleware):
    """Counts model calls and the prompt tokens of each, as the server's ``usage`` reports them
    (the estimate only when a server reports none)."""

    def __init__(self) -> None:
        super().__init__()
        self.prompt_tokens: list[int] = []
        self.estimated = False

    @property
    def calls(self) -> int:
        return len(self.prompt_tokens)

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        system = [request.system_message] if request.system_message else []
        estimate = estimate_tokens([*system, *request.messages], request.tools)
        try:
            response = handler(request)
        except Exception:
            self.prompt_tokens.append(estimate)  # the call was made (and failed)
            raise
        usage = next((m.usage_metadata for m in response.result if isinstance(m, AIMessage)), None)
        if usage and usage.get("input_tokens"):
            self.prompt_tokens.append(int(usage["input_tokens"]))
        else:
            self.estimated = True
            self.prompt_tokens.append(estimate)
        return response
