"""Which chat questions the daily checks answer, and which name something to investigate."""

import pytest

from bot.diagnose import questions
from bot.diagnose.investigation import Subject

NOTHING = Subject(namespace="inference")


@pytest.mark.parametrize(
    ("question", "topics"),
    [
        ("are the GPUs healthy?", ["health"]),
        ("What did we spend yesterday?", ["cost"]),
        ("Morning check: is everything healthy on the cluster?", ["health"]),
        ("any 5xx errors or slow responses today?", ["errors", "latency"]),
        ("how busy are the GPUs, and is VRAM close to full memory?", ["utilisation", "memory"]),
        ("are we over budget ($)?", ["cost"]),
    ],
)
def test_checklist_topics(question: str, topics: list[str]) -> None:
    assert questions.topics(question) == topics
    assert questions.is_checklist(question, NOTHING)


@pytest.mark.parametrize(
    "question", ["who wrote this bot?", "what is the capital of France", "hello there"]
)
def test_off_topic_questions_are_not_the_checklist(question: str) -> None:
    assert questions.topics(question) == []
    assert not questions.is_checklist(question, NOTHING)


def test_a_question_that_names_an_object_is_an_investigation() -> None:
    named = Subject(namespace="inference", workloads=["llama-3-8b"])
    assert not questions.is_checklist("is llama-3-8b healthy?", named)
    assert questions.names_objects(Subject(namespace="inference", nodes=["gpu-a"]))
    assert not questions.names_objects(NOTHING)


def test_words_inside_other_words_do_not_count() -> None:
    # "costume" is not cost, "download" is not load, "okra" is not ok.
    assert questions.topics("the costume okra download") == []
