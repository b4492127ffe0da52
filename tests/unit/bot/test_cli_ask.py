"""`opsbot ask` from a terminal: the model answers when it can, the detectors when it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import up
from lab.llm import start_llm
from lab.scenario import loader

OPSBOT = Path(sys.executable).parent / "opsbot"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    scenario = loader.load_file(ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml")
    with up.Lab(scenario) as lab:
        lab.start(deliver_alerts=False)
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "AWS_"))
        }
        db = tmp_path_factory.mktemp("db") / "opsbot.sqlite"
        yield {**clean, **lab.env(), "OPSBOT_DB_PATH": str(db), "OPSBOT_LOG_LEVEL": "ERROR"}


def _ask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OPSBOT), "ask", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_the_model_answers_and_says_so(env: dict[str, str]) -> None:
    with start_llm([{"content": "The KV cache of llama-3-8b is full."}], model="lab-model") as llm:
        result = _ask(
            {**env, "OPSBOT_LLM_BASE_URL": f"{llm.url}/v1", "OPSBOT_LLM_MODEL": "lab-model"},
            "why is llama-3-8b crashing?",
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The KV cache of llama-3-8b is full.")
    assert (
        "[answered by the model, 1 model calls; findings: gpu-oom/kv-cache-pressure"
        in result.stdout
    )


def test_without_a_model_the_detectors_answer_in_json(env: dict[str, str]) -> None:
    result = _ask({**env, "OPSBOT_LLM_BASE_URL": ""}, "why is llama-3-8b crashing?", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["diagnosis"]["mode"] == "rules"
    assert "no LLM is configured" in answer["fallback"]
    assert isinstance(answer["diagnosis"]["id"], int)  # saved in the store
