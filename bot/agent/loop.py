"""The one agent loop: the runbook detectors first, then the model to check, explain and extend,
and the detectors' answer alone whenever the model cannot help.

The model runs on the cluster it diagnoses, so it may be down exactly when it is needed: any
model failure (unreachable, past its timeout, 5xx, a refused request, malformed tool calls)
ends in the deterministic diagnosis with one line saying the model was unavailable and why.
The answer says which mode answered. Everything the model says passes redaction.
"""

from __future__ import annotations

import time
from typing import Any, cast

import openai
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelCallLimitMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel

from bot import logs, metrics
from bot.agent import guards, prompts, toolset
from bot.agent.memory import Memory
from bot.agent.model import Window, chat_model, context_window
from bot.config import Settings
from bot.diagnose import codes, history
from bot.diagnose.investigation import Investigation
from bot.diagnose.model import Diagnosis, Evidence, Finding, Trigger
from bot.diagnose.service import Diagnoser
from bot.store import Store
from tools import redact

log = logs.get("opsbot.agent")

ANSWER_ROOM = 256
"""Tokens kept free besides ``max_tokens``: the chat template's own framing."""
LIMIT_MARK = "Model call limits exceeded"


class Answer(BaseModel):
    """What a person gets back, and how it was reached."""

    text: str
    diagnosis: Diagnosis
    """The detectors' findings plus those the model reported; ``mode`` says who answered."""
    fallback: str | None = None
    """One line, when the model could not help: why the runbook detectors answered alone."""
    llm_calls: int = 0
    prompt_tokens: list[int] = []
    """Per model call, as the server's ``usage`` reported it."""
    model_findings: list[str] = []
    seconds: float = 0.0


class Agent:
    """Answers triggers and chat questions; one instance serves many threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        diagnoser: Diagnoser | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.diagnoser = diagnoser or Diagnoser(settings)
        self.memory = Memory(store, turns=settings.agent_memory_turns) if store else None
        self._window: Window | None = None

    def answer(self, trigger: Trigger, *, thread_id: str | None = None) -> Answer:
        """Diagnose ``trigger`` and let the model check and explain it (or say why it did not)."""
        started = time.monotonic()
        inv, diagnosis = self.diagnoser.investigate(trigger)
        remembered = self.memory.history(thread_id) if self.memory and thread_id else []
        if not self.settings.llm_base_url:
            result = _fallback(diagnosis, "no LLM is configured (OPSBOT_LLM_BASE_URL)")
        else:
            result = self._with_model(inv, diagnosis, trigger, remembered)
        result = result.model_copy(update={"seconds": time.monotonic() - started})
        metrics.ANSWER_SECONDS.observe(result.seconds)
        metrics.DIAGNOSES.labels(mode=result.diagnosis.mode).inc()
        metrics.LLM_CALLS.inc(result.llm_calls)
        if result.fallback is not None:
            metrics.LLM_FALLBACKS.inc()
        if self.store is not None:
            saved = history.save(
                self.store, result.diagnosis, expiry_minutes=self.settings.approvals.expiry_minutes
            )
            result.diagnosis.id = saved
        if self.memory is not None and thread_id:
            self.memory.add(thread_id, _said(trigger), result.text)
        return result

    def window(self) -> Window:
        """The context window, asked of the server once it answers (config wins)."""
        if self._window is None or self._window.source == "assumed":
            self._window = context_window(self.settings)
        return self._window

    def _with_model(
        self, inv: Investigation, diagnosis: Diagnosis, trigger: Trigger, remembered: list[Any]
    ) -> Answer:
        record = toolset.Record()
        runbook = self.diagnoser.runbooks.get(diagnosis.runbook or "")
        tools = toolset.build(
            inv,
            diagnosis,
            fixes=self.settings.fixes,
            names=toolset.tool_names(runbook.tools if runbook else ()),
            record=record,
        )
        meter = guards.Meter()
        try:
            budget = self.window().tokens - self.settings.llm_max_tokens - ANSWER_ROOM
            steps = self.settings.agent_max_steps
            agent = create_agent(
                model=chat_model(self.settings),
                tools=tools,
                system_prompt=prompts.SYSTEM,
                middleware=[
                    cast(
                        AgentMiddleware,
                        ModelCallLimitMiddleware(run_limit=steps, exit_behavior="end"),
                    ),
                    guards.MalformedCalls(),
                    guards.PromptBudget(budget),
                    meter,
                    guards.RefuseRepeats(),
                ],
            )
            messages: list[BaseMessage] = [  # what people said is data, now as then
                HumanMessage(prompts.fence(m.content, source="earlier question", limit=1500))
                if m.role == "user"
                else AIMessage(m.content)
                for m in remembered
            ]
            opening = prompts.first_message(
                trigger, diagnosis, runbook, sorted(codes.FINDING_CODES)
            )
            messages.append(HumanMessage(opening if not remembered else _follow_up(opening)))
            state: dict[str, Any] = agent.invoke(  # type: ignore[call-overload]
                {"messages": messages}, config={"recursion_limit": 6 * steps + 10}
            )
        except Exception as e:  # every model failure falls back; our own bugs are logged too
            why = describe_failure(e, timeout=self.settings.llm_timeout_seconds)
            log.warning("agent.fallback", reason=why, calls=meter.calls)
            result = _fallback(diagnosis, why)
            return result.model_copy(
                update={"llm_calls": meter.calls, "prompt_tokens": meter.prompt_tokens}
            )
        final = _final_text(state["messages"], record, diagnosis)
        merged = _merge(diagnosis, record)
        return Answer(
            text=redact.redact(final),
            diagnosis=merged,
            llm_calls=meter.calls,
            prompt_tokens=meter.prompt_tokens,
            model_findings=record.findings,
        )


def describe_failure(error: BaseException, *, timeout: float) -> str:
    """One line on why the model could not answer."""
    if isinstance(error, openai.APITimeoutError):
        return f"the model did not answer within {timeout:g}s"
    if isinstance(error, openai.APIConnectionError):
        return f"the model is unreachable ({error.__cause__ or error})"
    if isinstance(error, openai.APIStatusError):
        return f"the model answered HTTP {error.status_code}"
    if isinstance(error, guards.MalformedToolCalls):
        return f"the model returned malformed tool calls ({error})"
    return f"the model call failed ({type(error).__name__}: {str(error)[:200]})"


def _follow_up(opening: str) -> str:
    return "This continues the conversation above.\n" + opening


def _said(trigger: Trigger) -> str:
    if trigger.kind == "question":
        return trigger.question or ""
    if trigger.kind == "workload":
        return f"diagnose {trigger.namespace}/{trigger.workload}"
    return f"diagnose alert {trigger.alertname} {trigger.labels}"


def _final_text(messages: list[Any], record: toolset.Record, diagnosis: Diagnosis) -> str:
    last = messages[-1] if messages else None
    text = str(last.content).strip() if isinstance(last, AIMessage) else ""
    if text and not text.startswith(LIMIT_MARK):
        return text
    gathered = record.summary or summary(diagnosis)
    return f"I reached my step limit; from what I gathered: {gathered}"


def _merge(diagnosis: Diagnosis, record: toolset.Record) -> Diagnosis:
    """The detectors' diagnosis plus the model's reported codes and proposals."""
    live = set(diagnosis.codes())
    added = [
        Finding(
            code=code,
            summary=record.summary or "reported by the model",
            confidence=0.5,
            evidence=[
                Evidence(source="llm", call="report_diagnosis", value=record.summary or code)
            ],
        )
        for code in record.findings
        if code not in live
    ]
    known = {p.label for p in diagnosis.proposals}
    extra = [p for p in record.proposals if p.label not in known]
    return diagnosis.model_copy(
        update={
            "findings": [*diagnosis.findings, *added],
            "proposals": [*diagnosis.proposals, *extra],
            "mode": "llm",
        }
    )


def summary(diagnosis: Diagnosis, *, findings: int = 3) -> str:
    """The deterministic diagnosis in a few lines: top findings, fixes, unknown sources."""
    live = [f for f in diagnosis.findings if not f.ruled_out][:findings]
    lines = [f"{f.code}: {f.summary}" for f in live] or ["no finding in what could be read"]
    lines += [f"proposed fix: {p.label}" for p in diagnosis.proposals[:3]]
    if diagnosis.unreachable:
        lines.append(f"unknown (unreachable): {', '.join(diagnosis.unreachable)}")
    return "\n".join(lines)


def _fallback(diagnosis: Diagnosis, why: str) -> Answer:
    note = f"(The model was unavailable: {why}. The runbook detectors answered.)"
    return Answer(
        text=f"{summary(diagnosis)}\n{note}",
        diagnosis=diagnosis.model_copy(update={"mode": "rules"}),
        fallback=note,
    )
