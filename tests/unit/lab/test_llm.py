"""The scripted model through the clients the bot uses: langchain-openai and the openai SDK.

If these clients assemble its answers into the right messages, tool calls and usage, the bot's
agent sees what it would see from vLLM.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from lab import llm
from lab.scenario.models import LlmTurn, Scenario, ToolCall

MODEL = "lab-model"
FINAL = "GPU memory is at vLLM's reserved fraction; the alert is noise."
SCRIPT = [
    LlmTurn(tool_calls=[ToolCall(name="get_pod", args={"namespace": "inference", "name": "p-1"})]),
    LlmTurn(content=FINAL),
]


@tool
def get_pod(namespace: str, name: str) -> str:
    """Read one pod."""
    return json.dumps({"namespace": namespace, "name": name, "phase": "Running"})


@pytest.fixture
def server() -> Iterator[llm.ScriptedLlm]:
    with llm.ScriptedLlm(SCRIPT, model=MODEL) as scripted:
        yield scripted


def _chat(server: llm.ScriptedLlm, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=server.url + "/v1", api_key="EMPTY", model=MODEL, temperature=0, **options
    )


def _client(server: llm.ScriptedLlm) -> openai.OpenAI:
    """The SDK directly; used in a ``with`` block so its pooled sockets are closed."""
    return openai.OpenAI(base_url=server.url + "/v1", api_key="EMPTY", max_retries=0)


def _aggregate(chunks: Iterator[BaseMessage]) -> AIMessageChunk:
    parts = list(chunks)
    assert all(isinstance(p, AIMessageChunk) for p in parts)
    total = parts[0]
    for part in parts[1:]:
        total = total + part  # type: ignore[operator]
    assert isinstance(total, AIMessageChunk)
    return total


def _sse(server: llm.ScriptedLlm, body: dict[str, Any]) -> list[str]:
    """The raw ``data:`` payloads of a streamed answer, to check the wire itself."""
    request = urllib.request.Request(
        server.url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = response.read().decode()
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    return [e.removeprefix("data: ") for e in events]


def test_models_lists_the_model_with_max_model_len() -> None:
    with llm.start_llm([], model="llama-3-8b", max_model_len=4096) as server, _client(server) as c:
        [card] = c.models.list().data
    assert card.id == "llama-3-8b"
    assert card.owned_by == "vllm"
    assert (card.model_extra or {})["max_model_len"] == 4096
    assert (card.model_extra or {})["root"] == "llama-3-8b"


def test_tool_call_round_trip_without_streaming(server: llm.ScriptedLlm) -> None:
    model = _chat(server).bind_tools([get_pod])
    history: list[BaseMessage] = [HumanMessage("Is pod p-1 healthy?")]

    first = model.invoke(history)
    assert isinstance(first, AIMessage)
    [call] = first.tool_calls
    assert call["name"] == "get_pod"
    assert call["args"] == {"namespace": "inference", "name": "p-1"}
    assert call["id"] and call["id"].startswith("call_")
    assert first.response_metadata["finish_reason"] == "tool_calls"

    history += [first, get_pod.invoke(call)]
    second = model.invoke(history)
    assert second.content == FINAL
    assert not second.tool_calls
    assert second.response_metadata["finish_reason"] == "stop"

    calls = server.calls()
    assert len(calls) == 2
    assert calls[0].tool_names == ["get_pod"]
    assert calls[0].model == MODEL
    assert calls[0].temperature == 0
    assert not calls[0].stream
    assert [m["role"] for m in calls[1].messages] == ["user", "assistant", "tool"]
    assert calls[1].messages[2]["tool_call_id"] == call["id"]
    assert second.usage_metadata is not None
    assert second.usage_metadata["input_tokens"] == calls[1].prompt_tokens
    assert second.usage_metadata["output_tokens"] == llm.count_tokens(FINAL)
    assert server.remaining() == 0


def test_prompt_tokens_are_characters_over_four_of_messages_and_tools(
    server: llm.ScriptedLlm,
) -> None:
    model = _chat(server).bind_tools([get_pod])
    answer = model.invoke([HumanMessage("x" * 4000)])
    [call] = server.calls()
    sent = json.dumps(call.messages) + json.dumps(call.tools)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == call.prompt_tokens
    assert abs(call.prompt_tokens - len(sent) / 4) < len(sent) * 0.05
    assert server.prompt_tokens() == [call.prompt_tokens]
    assert server.max_prompt_tokens() == server.total_prompt_tokens() == call.prompt_tokens


def test_tool_call_round_trip_streaming(server: llm.ScriptedLlm) -> None:
    model = _chat(server, stream_usage=True).bind_tools([get_pod])
    history: list[BaseMessage] = [HumanMessage("Is pod p-1 healthy?")]

    first = _aggregate(model.stream(history))
    assert len(first.tool_call_chunks) == 1
    [call] = first.tool_calls
    assert call["name"] == "get_pod"
    assert call["args"] == {"namespace": "inference", "name": "p-1"}
    assert not first.invalid_tool_calls
    assert first.usage_metadata is not None
    assert first.usage_metadata["input_tokens"] == server.calls()[0].prompt_tokens

    history += [AIMessage(content="", tool_calls=first.tool_calls), get_pod.invoke(call)]
    pieces = list(model.stream(history))
    assert sum(1 for p in pieces if p.content) > 1, "content arrives in several deltas"
    second = _aggregate(iter(pieces))
    assert second.content == FINAL
    assert second.usage_metadata is not None
    assert second.usage_metadata["input_tokens"] == server.calls()[1].prompt_tokens
    assert server.calls()[1].stream


def test_stream_wire_shape(server: llm.ScriptedLlm) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    events = _sse(server, {**body, "stream_options": {"include_usage": True}})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-2]]
    assert deltas[0]["tool_calls"][0].keys() == {"index", "id", "type", "function"}
    assert deltas[0]["tool_calls"][0]["function"] == {"name": "get_pod"}
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:])
    assert json.loads(arguments) == {"namespace": "inference", "name": "p-1"}
    assert len(deltas) > 2, "arguments arrive in pieces"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    without_usage = [json.loads(e) for e in _sse(server, body)[:-1]]
    assert all("usage" not in c for c in without_usage)
    assert without_usage[-1]["choices"][0]["finish_reason"] == "stop"


def test_running_out_of_script_gives_a_short_final_text() -> None:
    with llm.start_llm([{"content": "only turn"}]) as server:
        chat = _chat(server)
        assert chat.invoke("one").content == "only turn"
        last = chat.invoke("two")
        assert last.content == llm.DEFAULT_FINAL_TEXT
        assert not getattr(last, "tool_calls", None)
        assert len(server.calls()) == 2


def test_a_tool_the_request_did_not_offer_is_still_replayed() -> None:
    script = [{"tool_calls": [{"name": "delete_cluster", "args": {}}]}]
    with llm.start_llm(script) as server:
        answer = _chat(server).bind_tools([get_pod]).invoke("hello")
    assert isinstance(answer, AIMessage)
    assert [c["name"] for c in answer.tool_calls] == ["delete_cluster"]
    assert answer.tool_calls[0]["args"] == {}


def test_a_prompt_over_max_model_len_is_refused_like_vllm() -> None:
    with llm.start_llm(SCRIPT, max_model_len=100) as server:
        chat = _chat(server)
        with pytest.raises(openai.BadRequestError) as refused:
            chat.invoke("y" * 1000)
        body = refused.value.body
        assert isinstance(body, dict)
        assert body["object"] == "error"
        assert body["type"] == "BadRequestError"
        assert body["code"] == 400
        assert body["param"] is None
        tokens = server.calls()[0].prompt_tokens
        assert body["message"] == (
            f"This model's maximum context length is 100 tokens. However, you requested "
            f"{tokens} tokens in the messages, Please reduce the length of the messages."
        )

        with pytest.raises(openai.BadRequestError) as with_completion:
            _chat(server, max_tokens=95).invoke("short")
        tokens = server.calls()[1].prompt_tokens
        assert f"({tokens} in the messages, 95 in the completion)" in str(with_completion.value)

        assert [c.refused for c in server.calls()] == [True, True]
        assert server.remaining() == len(SCRIPT), "a refused call plays no turn"
        assert _chat(server).bind_tools([get_pod]).invoke("ok").tool_calls


def test_newer_vllm_error_shape_is_nested() -> None:
    with (
        llm.start_llm([], max_model_len=10, error_style="nested") as server,
        _client(server) as c,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "z" * 200}])
    assert refused.value.status_code == 400
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["type"] == "BadRequestError"
    assert "maximum context length is 10 tokens" in refused.value.body["message"]


def test_refusal_can_be_turned_off() -> None:
    with llm.start_llm([{"content": "fine"}], max_model_len=10, enforce_max_model_len=False) as s:
        assert _chat(s).invoke("z" * 200).content == "fine"
        assert s.max_prompt_tokens() > 10


def test_built_from_a_scenario() -> None:
    scenario = Scenario.model_validate(
        {"name": "s", "llm_script": [{"content": "from the scenario"}]}
    )
    with llm.ScriptedLlm.from_scenario(scenario) as server:
        assert _chat(server).invoke("hi").content == "from the scenario"


def test_concurrent_calls_each_get_their_own_turn() -> None:
    script = [{"content": f"turn {i}"} for i in range(8)]
    answers: list[str] = []
    lock = threading.Lock()
    with llm.start_llm(script) as server, _client(server) as client:

        def ask() -> None:
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "go"}]
            )
            with lock:
                answers.append(reply.choices[0].message.content or "")

        threads = [threading.Thread(target=ask) for _ in script]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(answers) == sorted(t["content"] for t in script)


def test_unknown_paths_and_methods_answer_like_fastapi() -> None:
    with llm.start_llm([]) as server:
        for method, path, status in [
            ("GET", "/v1/nope", 404),
            ("GET", "/v1/chat/completions", 405),
        ]:
            request = urllib.request.Request(server.url + path, method=method)
            with pytest.raises(urllib.error.HTTPError) as failed:
                urllib.request.urlopen(request, timeout=10)
            failed.value.close()  # the error holds the response's socket
            assert failed.value.code == status
