"""The LLM agent: one LangChain loop over the read tools, bounded, falling back to the runbook
detectors whenever the model cannot help."""

from bot.agent.loop import Agent, Answer

__all__ = ["Agent", "Answer"]
