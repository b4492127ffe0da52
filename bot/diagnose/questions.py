"""What a chat question asks for when no LLM answers it (SCENARIOS.md).

A question that names no object and asks about health, errors, latency, utilisation, memory or
cost ("are the GPUs healthy?", "what did we spend yesterday?") is the daily checklist; one that
names workloads, pods, nodes or models is an investigation of those. Which objects it names is
decided against the cluster (``subject.resolve``), not guessed from the words.
"""

from __future__ import annotations

import re

from bot.diagnose.investigation import Subject

TOPICS: dict[str, tuple[str, ...]] = {
    "health": (
        r"health\w*",
        r"ok(ay)?",
        r"fine",
        r"status",
        r"check(list)?",
        r"ready",
        r"running",
        r"down",
        r"broken",
        r"wrong",
        r"problems?",
        r"issues?",
    ),
    "errors": (r"errors?", r"fail\w*", r"5\d\d", r"exceptions?"),
    "latency": (r"latency", r"slow\w*", r"p9\d", r"response times?", r"timeouts?"),
    "utilisation": (r"utili[sz]\w*", r"usage", r"busy", r"idle", r"load"),
    "memory": (r"memory", r"vram", r"oom"),
    "cost": (
        r"costs?",
        r"spen[dt]\w*",
        r"budget",
        r"bill\w*",
        r"money",
        r"dollars?",
        r"usd",
        r"\$",
    ),
}
_PATTERNS = {
    topic: re.compile(r"(?<![\w$])(" + "|".join(words) + r")(?!\w)", re.IGNORECASE)
    for topic, words in TOPICS.items()
}


def topics(question: str) -> list[str]:
    """The checklist topics a question asks about, in TOPICS order."""
    return [topic for topic, pattern in _PATTERNS.items() if pattern.search(question)]


def names_objects(subject: Subject) -> bool:
    """Whether the question named something the cluster has (workload, pod, node, model)."""
    return bool(subject.workloads or subject.pods or subject.nodes or subject.models)


def is_checklist(question: str, subject: Subject) -> bool:
    """A question for the daily checks: it names no object and asks about a checklist topic."""
    return not names_objects(subject) and bool(topics(question))
