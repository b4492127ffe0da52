"""The chat handler's pieces that need no Slack: which cluster a question names, help."""

from __future__ import annotations

import pytest

from bot.config import ClusterSettings, Settings
from bot.slack import app as slack_app
from bot.slack import chat


def _settings() -> Settings:
    other = ClusterSettings(
        name="prod-apne2",
        prometheus_url="http://p",
        alertmanager_url="http://a",
        kubecost_url="http://k",
    )
    return Settings(cluster_name="prod", clusters=[other], llm_base_url=None)


@pytest.mark.parametrize(
    ("question", "cluster"),
    [
        ("why is llama slow on prod-apne2?", "prod-apne2"),
        ("on PROD-APNE2, what is firing", "prod-apne2"),
        ("what is wrong on prod", "prod"),
        ("why is llama slow?", None),
        ("is production ok", None),
    ],
)
def test_a_question_may_name_a_cluster(question: str, cluster: str | None) -> None:
    assert chat.named_cluster(question, _settings()) == cluster


@pytest.mark.parametrize("text", ["help", "What can you do?", " ? ", "what do you do"])
def test_help_questions(text: str) -> None:
    assert chat.HELP.match(text)


def test_a_real_question_is_not_help() -> None:
    assert not chat.HELP.match("help me with llama-3-8b crashing")


def test_mentions_are_stripped() -> None:
    assert slack_app.strip_mentions("<@U0OPSBOT01> why <@U0BOB00001>?") == "why ?"
