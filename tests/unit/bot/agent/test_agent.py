"""The agent against the lab's scripted model over HTTP: a whole tool-calling diagnosis
(streaming and not), the guards, the fallback for every way the model can fail, and memory."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from bot.agent import Agent, Answer
from bot.agent.model import context_window
from bot.config import Settings
from bot.diagnose import service
from bot.diagnose.model import Trigger
from bot.store import Store
from lab import up
from lab.httpserver import Fault
from lab.llm import ScriptedLlm, start_llm
from lab.scenario import loader

ROOT = Path(__file__).resolve().parents[4]
POD = "llama-3-8b-7d9f6c5b8-2xkqp"
REPORT = {
    "name": "report_diagnosis",
    "args": {"findings": ["gpu-oom/kv-cache-pressure"], "summary": "KV cache full; CUDA OOM."},
}
FINAL = "llama-3-8b ran out of GPU memory: gpu-memory-utilization 0.98 leaves no headroom."
SCRIPT: list[dict[str, Any]] = [
    {
        "tool_calls": [
            {
                "name": "pod_logs",
                "args": {
                    "namespace": "inference",
                    "pod": POD,
                    "previous": True,
                    "grep": "OutOfMemory",
                },
            }
        ]
    },
    {"tool_calls": [REPORT]},
    {"content": FINAL},
]


@dataclass
class Running:
    lab: up.Lab
    trigger: Trigger


@pytest.fixture(scope="module")
def oom() -> Iterator[Running]:
    scenario = loader.load_file(ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml")
    with up.Lab(scenario) as lab, pytest.MonkeyPatch.context() as mp:
        lab.start(deliver_alerts=False)
        for key, value in lab.env().items():
            if key.startswith("AWS_"):
                mp.setenv(key, value)
        yield Running(lab, service.trigger_from_alert(scenario.alerts[0].model_dump()))


def _settings(oom: Running, llm: ScriptedLlm | None, **overrides: Any) -> Settings:
    url = f"{llm.url}/v1" if llm is not None else None
    return oom.lab.settings(llm_base_url=url, llm_model="lab-model", **overrides)


def _tool_messages(llm: ScriptedLlm, call: int) -> list[dict[str, Any]]:
    return [m for m in llm.calls()[call].messages if m.get("role") == "tool"]


@pytest.mark.parametrize("streaming", [True, False])
def test_a_full_tool_calling_diagnosis_ends_in_report_diagnosis(
    oom: Running, streaming: bool
) -> None:
    with start_llm(SCRIPT) as llm:
        answer = Agent(_settings(oom, llm, llm_streaming=streaming)).answer(oom.trigger)
        calls = llm.calls()
        assert [c.stream for c in calls] == [streaming] * 3
        assert answer.prompt_tokens == llm.prompt_tokens()  # the server's usage, per call
    assert answer.fallback is None and answer.diagnosis.mode == "llm"
    assert answer.text == FINAL
    assert answer.llm_calls == 3
    assert answer.model_findings == ["gpu-oom/kv-cache-pressure"]
    assert answer.diagnosis.runbook == "gpu-oom"  # the engine's, whatever the model says
    assert "gpu-oom/kv-cache-pressure" in answer.diagnosis.codes()
    # The model started from the detectors' evidence, fenced as data.
    opening = calls[0].messages[-1]["content"]
    assert "Deterministic diagnosis" in opening and "gpu-oom/kv-cache-pressure" in opening
    assert "<<<DATA source=runbook detectors" in opening
    # Only read tools and the two recording tools are offered; the logs came back fenced.
    offered = set(calls[0].tool_names)
    assert {"pod_logs", "propose_fix", "report_diagnosis"} <= offered
    assert not any(n.startswith(("patch", "apply", "scale", "delete")) for n in offered)
    logs = _tool_messages(llm, 1)[0]["content"]
    assert logs.startswith("<<<DATA source=pod_logs") and "OutOfMemory" in logs
    assert all(c.temperature == 0 and c.max_tokens == 1024 for c in calls)


def test_scored_codes_are_the_detectors_plus_the_models(oom: Running) -> None:
    extra = {
        "name": "report_diagnosis",
        "args": {
            "findings": ["gpu-oom/kv-cache-pressure", "gpu-oom/context-too-long", "not/a-code"],
            "summary": "also long contexts",
        },
    }
    with start_llm([{"tool_calls": [extra]}, {"content": "done"}]) as llm:
        answer = Agent(_settings(oom, llm)).answer(oom.trigger)
        reply = _tool_messages(llm, 1)[0]["content"]
    assert "not finding codes, ignored: ['not/a-code']" in reply
    codes = answer.diagnosis.codes()
    assert "gpu-oom/context-too-long" in codes and "not/a-code" not in codes
    added = next(f for f in answer.diagnosis.findings if f.code == "gpu-oom/context-too-long")
    assert added.evidence[0].source == "llm"


def test_propose_fix_goes_through_the_catalog_for_related_targets_only(oom: Running) -> None:
    related = {
        "name": "propose_fix",
        "args": {
            "code": "scale-up",
            "target": "deployment/inference/llama-3-8b",
            "reason": "headroom",
        },
    }
    unrelated = {
        "name": "propose_fix",
        "args": {"code": "cordon-node", "target": "node/somewhere-else", "reason": "because"},
    }
    bogus = {
        "name": "propose_fix",
        "args": {
            "code": "delete-namespace",
            "target": "deployment/inference/llama-3-8b",
            "reason": "x",
        },
    }
    turns = [{"tool_calls": [related, unrelated, bogus]}, {"content": "ok"}]
    with start_llm(turns) as llm:
        answer = Agent(_settings(oom, llm)).answer(oom.trigger)
        replies = [m["content"] for m in _tool_messages(llm, 1)]
    labels = [p.label for p in answer.diagnosis.proposals]
    assert "scale-up@deployment/inference/llama-3-8b" in labels
    assert not any("somewhere-else" in label or "delete" in label for label in labels)
    assert replies[0].startswith("recorded for human approval: scale-up@")
    assert replies[1].startswith("refused: node/somewhere-else is not involved")
    assert replies[2].startswith("refused: 'delete-namespace' is not a fix code")


def test_an_identical_repeated_call_is_refused(oom: Running) -> None:
    call = {"name": "vllm_status", "args": {"model": "llama-3-8b"}}
    with start_llm([{"tool_calls": [call]}, {"tool_calls": [call]}, {"content": "ok"}]) as llm:
        Agent(_settings(oom, llm)).answer(oom.trigger)
        first = _tool_messages(llm, 1)[-1]["content"]
        second = _tool_messages(llm, 2)[-1]["content"]
    assert first.startswith("<<<DATA source=vllm_status")
    assert second.startswith("refused: you already made this exact call")


def test_the_step_limit_ends_with_an_answer_from_what_was_gathered(oom: Running) -> None:
    turns = [
        {"tool_calls": [{"name": "vllm_status", "args": {"window": f"{m}m"}}]}
        for m in range(5, 50, 5)
    ]
    with start_llm(turns) as llm:
        answer = Agent(_settings(oom, llm, agent_max_steps=3)).answer(oom.trigger)
        assert len(llm.calls()) == 3
    assert answer.llm_calls == 3 and answer.fallback is None
    assert answer.text.startswith("I reached my step limit; from what I gathered:")
    assert "gpu-oom/kv-cache-pressure" in answer.text  # the detectors' finding, not nothing


def test_old_tool_output_is_cut_to_fit_the_prompt_budget(oom: Running) -> None:
    big = [
        {
            "tool_calls": [
                {
                    "name": "pod_logs",
                    "args": {"namespace": "inference", "pod": POD, "previous": prev},
                }
            ]
        }
        for prev in (True, False)
    ]
    turns = [
        *big,
        {
            "tool_calls": [
                {"name": "k8s_describe", "args": {"kind": "deployment", "name": "llama-3-8b"}}
            ]
        },
        {"content": "ok"},
    ]
    with start_llm(turns, max_model_len=6200) as llm:
        answer = Agent(_settings(oom, llm)).answer(oom.trigger)
        last = llm.calls()[-1].messages
        sizes = llm.prompt_tokens()
    assert answer.fallback is None, answer.fallback  # never over the server's window
    assert max(sizes) <= 6200 - 1024
    stubs = [m["content"] for m in last if m.get("role") == "tool" and "cut to fit" in m["content"]]
    assert stubs and stubs[0].startswith("[output of pod_logs cut to fit the context")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_fell_back(answer: Answer, why: str) -> None:
    assert answer.diagnosis.mode == "rules"
    assert answer.fallback is not None and why in answer.fallback
    assert "The runbook detectors answered" in answer.text
    assert "gpu-oom/kv-cache-pressure" in answer.text  # the deterministic diagnosis is the answer
    assert "gpu-oom/kv-cache-pressure" in answer.diagnosis.codes()


def test_an_unreachable_model_falls_back(oom: Running) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    started = time.monotonic()
    answer = Agent(oom.lab.settings(llm_base_url=url, llm_context_tokens=8192)).answer(oom.trigger)
    assert time.monotonic() - started < 30  # generous: the goal (< 5 s) is measured in bench/
    _assert_fell_back(answer, "unreachable")


@pytest.mark.parametrize("streaming", [True, False])
def test_a_5xx_falls_back(oom: Running, streaming: bool) -> None:
    with start_llm(SCRIPT) as llm:
        llm.server.fault = Fault(status=503, path="/chat/completions")
        answer = Agent(_settings(oom, llm, llm_streaming=streaming)).answer(oom.trigger)
    _assert_fell_back(answer, "HTTP 503")


def test_a_model_slower_than_its_timeout_falls_back(oom: Running) -> None:
    with start_llm(SCRIPT) as llm:
        llm.server.fault = Fault(delay=5, path="/chat/completions")
        started = time.monotonic()
        answer = Agent(_settings(oom, llm, llm_timeout_seconds=1)).answer(oom.trigger)
        elapsed = time.monotonic() - started
    _assert_fell_back(answer, "did not answer within 1s")
    assert elapsed < 4.5  # one attempt of 1 s, not retries stacking up (margin for the lab)


def test_malformed_tool_calls_fall_back(oom: Running) -> None:
    completion = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "lab-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "pod_logs",
                                "arguments": '{"pod": "x", "previous": tru',
                            },
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    with start_llm(SCRIPT) as llm:
        llm.server.fault = Fault(
            status=200, path="/chat/completions", body=json.dumps(completion).encode()
        )
        answer = Agent(_settings(oom, llm, llm_streaming=False)).answer(oom.trigger)
    _assert_fell_back(answer, "malformed tool calls")


def test_no_llm_configured_answers_with_the_detectors(oom: Running) -> None:
    answer = Agent(_settings(oom, None)).answer(oom.trigger)
    _assert_fell_back(answer, "no LLM is configured")
    assert answer.llm_calls == 0


def test_a_follow_up_in_the_thread_sees_the_earlier_turn_and_another_thread_does_not(
    oom: Running, tmp_path: Path
) -> None:
    store = Store(tmp_path / "opsbot.sqlite")
    turns = [
        {"content": "First answer: the KV cache is full."},
        {"content": "Second."},
        {"content": "Third."},
    ]
    with start_llm(turns) as llm:
        agent = Agent(_settings(oom, llm), store=store)
        agent.answer(
            Trigger(kind="question", question="why is llama-3-8b crashing?"), thread_id="t1"
        )
        agent.answer(
            Trigger(kind="question", question="and what should we change?"), thread_id="t1"
        )
        Agent(_settings(oom, llm), store=store).answer(  # a restart: a new Agent, same store
            Trigger(kind="question", question="anything else?"), thread_id="t2"
        )
        follow_up, other = llm.calls()[1].messages, llm.calls()[2].messages
    said = [m.get("content") for m in follow_up]
    assert "First answer: the KV cache is full." in said
    assert any("why is llama-3-8b crashing?" in str(s) for s in said)
    assert not any("First answer" in str(m.get("content")) for m in other)
    store.close()


def test_the_context_window_comes_from_config_or_the_server(oom: Running) -> None:
    with start_llm([], max_model_len=12_288) as llm:
        assert context_window(_settings(oom, llm)).tokens == 12_288
        assert context_window(_settings(oom, llm)).source == "server"
        assert context_window(_settings(oom, llm, llm_context_tokens=4096)).source == "config"
        llm.server.fault = Fault(status=404, path="/v1/models")  # a server that does not say
        assumed = context_window(_settings(oom, llm))
        assert (assumed.tokens, assumed.source) == (8192, "assumed")
    down = oom.lab.settings(llm_base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(openai.APIConnectionError):  # a model that is down is a failure
        context_window(down)
