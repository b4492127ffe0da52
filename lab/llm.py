"""A scripted model behind vLLM's OpenAI-compatible API, so the agent runs on a known path.

The model answers each ``POST /v1/chat/completions`` with the next turn of a scenario's
``llm_script`` (a list of tool calls or a text) and, once the script runs out, with a short
final text. It speaks the wire format vLLM speaks (``/v1/models`` with ``max_model_len``,
``chat.completion`` objects, SSE ``chat.completion.chunk`` streams, ``usage``, the 400 for a
prompt over the context length), so what eval measures is the bot's side: the prompts it builds
(tokens counted as characters / 4, as shared/SCENARIOS.md fixes) and how it handles each answer.
A tool call naming a tool the request did not offer is replayed as written: handling it is the
bot's job.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.httpserver import LabServer, Request, Response, json_response
from lab.scenario.models import LlmTurn, Scenario

DEFAULT_FINAL_TEXT = "I have nothing more to add: the investigation above is complete."
"""What the model says once its script has run out."""

ErrorStyle = Literal["flat", "nested"]
"""Older vLLM releases send ``{"object": "error", ...}``; newer ones ``{"error": {...}}``."""


def count_tokens(text: str) -> int:
    """Tokens as the lab counts them: characters / 4, rounded up."""
    return math.ceil(len(text) / 4)


def _canonical(value: Any) -> str:
    """JSON text independent of how the client spaced it, so counts do not depend on the SDK."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def count_prompt_tokens(messages: Sequence[Any], tools: Sequence[Any] | None = None) -> int:
    """A request's prompt tokens: characters / 4 of its messages and tools as JSON."""
    chars = len(_canonical(list(messages))) + (len(_canonical(list(tools))) if tools else 0)
    return math.ceil(chars / 4)


@dataclass(frozen=True)
class LlmCall:
    """One chat-completion request as the model saw it."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    model: str | None
    max_tokens: int | None
    """``max_completion_tokens``, else ``max_tokens``, as the request set it."""
    temperature: float | None
    stream: bool
    prompt_tokens: int
    refused: bool = False
    """True when the prompt was over ``max_model_len`` and the 400 was sent instead of a turn."""
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name", "") for t in self.tools]


def _turns(script: Sequence[LlmTurn | Mapping[str, Any]]) -> list[LlmTurn]:
    return [t if isinstance(t, LlmTurn) else LlmTurn.model_validate(dict(t)) for t in script]


class ScriptedLlm:
    """The scripted model: a ``LabServer`` plus the script's cursor and the recorded calls.

    Thread-safe: the cursor moves and calls are recorded under one lock, so concurrent requests
    each get their own turn.
    """

    def __init__(
        self,
        script: Sequence[LlmTurn | Mapping[str, Any]],
        *,
        model: str = "lab-model",
        max_model_len: int = 8192,
        enforce_max_model_len: bool = True,
        error_style: ErrorStyle = "flat",
        final_text: str = DEFAULT_FINAL_TEXT,
    ) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.enforce_max_model_len = enforce_max_model_len
        self.error_style: ErrorStyle = error_style
        self.final_text = final_text
        self._script = _turns(script)
        self._cursor = 0
        self._calls: list[LlmCall] = []
        self._lock = threading.Lock()
        self._created = int(time.time())
        self.server = LabServer(self._handle, name="llm")

    @classmethod
    def from_scenario(cls, scenario: Scenario, **options: Any) -> ScriptedLlm:
        return cls(scenario.llm_script, **options)

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server's root; clients use ``url + "/v1"`` as their base URL."""
        return self.server.url

    def start(self) -> ScriptedLlm:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> ScriptedLlm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- assertions ------------------------------------------------------------------------
    def calls(self) -> list[LlmCall]:
        """Every chat-completion request so far, refused ones included, in order."""
        with self._lock:
            return list(self._calls)

    def prompt_tokens(self) -> list[int]:
        """Prompt tokens of each call, in order."""
        return [c.prompt_tokens for c in self.calls()]

    def max_prompt_tokens(self) -> int:
        return max(self.prompt_tokens(), default=0)

    def total_prompt_tokens(self) -> int:
        return sum(self.prompt_tokens())

    def remaining(self) -> int:
        """Script turns not yet played."""
        with self._lock:
            return len(self._script) - self._cursor

    # --- HTTP ------------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response:
        routes = {"/v1/models": "GET", "/v1/chat/completions": "POST", "/health": "GET"}
        if request.path not in routes:
            return json_response({"detail": "Not Found"}, 404)
        if request.method != routes[request.path]:
            return json_response({"detail": "Method Not Allowed"}, 405)
        if request.path == "/v1/models":
            return json_response(self._model_list())
        if request.path == "/health":
            return Response(status=200)
        return self._chat(request)

    def _model_list(self) -> dict[str, Any]:
        card = {
            "id": self.model,
            "object": "model",
            "created": self._created,
            "owned_by": "vllm",
            "root": self.model,
            "parent": None,
            "max_model_len": self.max_model_len,
            "permission": [
                {
                    "id": f"modelperm-{uuid.uuid4().hex}",
                    "object": "model_permission",
                    "created": self._created,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
        }
        return {"object": "list", "data": [card]}

    def _error(self, message: str, status: int = 400, kind: str = "BadRequestError") -> Response:
        info = {"message": message, "type": kind, "param": None, "code": status}
        if self.error_style == "nested":
            return json_response({"error": info}, status)
        return json_response({"object": "error", **info}, status)

    def _chat(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError as e:
            return self._error(f"The request body is not valid JSON: {e}")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error("The request needs a list of `messages`.")
        messages: list[dict[str, Any]] = body["messages"]
        tools: list[dict[str, Any]] = body.get("tools") or []
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        prompt_tokens = count_prompt_tokens(messages, tools)
        too_long = self._over_length(prompt_tokens, max_tokens)
        call = LlmCall(
            messages=messages,
            tools=tools,
            model=body.get("model"),
            max_tokens=max_tokens,
            temperature=body.get("temperature"),
            stream=bool(body.get("stream")),
            prompt_tokens=prompt_tokens,
            refused=too_long is not None,
            body=body,
        )
        with self._lock:
            self._calls.append(call)
            number = len(self._calls)
            turn: LlmTurn | None = None
            if too_long is None and self._cursor < len(self._script):
                turn = self._script[self._cursor]
                self._cursor += 1
        if too_long is not None:
            return self._error(too_long)
        if turn is None:
            turn = LlmTurn(content=self.final_text)
        answer = _Answer.of(turn, number=number, model=self.model, prompt_tokens=prompt_tokens)
        if not call.stream:
            return json_response(answer.completion())
        options = body.get("stream_options") or {}
        return Response(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
            stream=answer.events(include_usage=bool(options.get("include_usage"))),
        )

    def _over_length(self, prompt_tokens: int, max_tokens: int | None) -> str | None:
        """vLLM's refusal text when the prompt (plus the completion asked for) does not fit."""
        if not self.enforce_max_model_len:
            return None
        limit = self.max_model_len
        head = f"This model's maximum context length is {limit} tokens. However, you requested "
        if max_tokens is None:
            if prompt_tokens >= limit:
                return (
                    f"{head}{prompt_tokens} tokens in the messages, "
                    "Please reduce the length of the messages."
                )
            return None
        if prompt_tokens + max_tokens > limit:
            return (
                f"{head}{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
                f"{max_tokens} in the completion). "
                "Please reduce the length of the messages or completion."
            )
        return None


@dataclass(frozen=True)
class _Answer:
    """One turn rendered in both wire forms: a ``chat.completion`` or a chunk stream."""

    id: str
    created: int
    model: str
    content: str | None
    tool_calls: list[dict[str, Any]]
    usage: dict[str, Any]

    @classmethod
    def of(cls, turn: LlmTurn, *, number: int, model: str, prompt_tokens: int) -> _Answer:
        tool_calls: list[dict[str, Any]] = [
            {
                "id": f"call_{number:04d}{index:02d}{uuid.uuid4().hex[:18]}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.args)},
            }
            for index, call in enumerate(turn.tool_calls or [])
        ]
        produced = turn.content or "".join(
            c.name + json.dumps(c.args) for c in turn.tool_calls or []
        )
        completion_tokens = count_tokens(produced)
        return cls(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=model,
            content=turn.content,
            tool_calls=tool_calls,
            usage={
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "completion_tokens": completion_tokens,
                "prompt_tokens_details": None,
            },
        )

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    def completion(self) -> dict[str, Any]:
        message = {
            "role": "assistant",
            "content": self.content,
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": self.tool_calls,
            "reasoning_content": None,
        }
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reason,
            "stop_reason": None,
        }
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": self.usage,
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def chunks(self, *, include_usage: bool) -> Iterator[dict[str, Any]]:
        """The chunks vLLM sends: role, content or tool-call pieces, finish, then usage."""
        yield self._chunk({"role": "assistant", "content": ""})
        for piece in _text_pieces(self.content or ""):
            yield self._chunk({"content": piece})
        for index, call in enumerate(self.tool_calls):
            head = {"index": index, "id": call["id"], "type": "function"}
            yield self._chunk(
                {"tool_calls": [{**head, "function": {"name": call["function"]["name"]}}]}
            )
            for piece in _split(call["function"]["arguments"], parts=3):
                yield self._chunk(
                    {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                )
        yield self._chunk({}, self.finish_reason)
        if include_usage:
            yield {**self._chunk({}), "choices": [], "usage": self.usage}

    def events(self, *, include_usage: bool) -> Iterator[bytes]:
        """The chunks as server-sent events, ending with ``data: [DONE]``."""
        for chunk in self.chunks(include_usage=include_usage):
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"


def _text_pieces(text: str) -> list[str]:
    """Text split after whitespace, a few words a piece, the way tokens trickle in."""
    words = re.findall(r"\S+\s*|\s+", text)
    return ["".join(words[i : i + 3]) for i in range(0, len(words), 3)]


def _split(text: str, *, parts: int) -> list[str]:
    """``text`` in up to ``parts`` consecutive, non-empty pieces."""
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def start_llm(
    turns: Sequence[LlmTurn | Mapping[str, Any]],
    *,
    model: str = "lab-model",
    max_model_len: int = 8192,
    enforce_max_model_len: bool = True,
    error_style: ErrorStyle = "flat",
    final_text: str = DEFAULT_FINAL_TEXT,
) -> ScriptedLlm:
    """Start a scripted model on a free port; stop it with ``.stop()`` or a ``with`` block."""
    return ScriptedLlm(
        turns,
        model=model,
        max_model_len=max_model_len,
        enforce_max_model_len=enforce_max_model_len,
        error_style=error_style,
        final_text=final_text,
    ).start()
