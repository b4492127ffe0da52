"""`opsbot diagnose` against the lab, as an on-call engineer runs it from a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import up
from lab.scenario import loader

OPSBOT = Path(sys.executable).parent / "opsbot"
ROOT = Path(__file__).resolve().parents[3]
NODE = "ip-10-1-2-33.ap-northeast-2.compute.internal"


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


def _opsbot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OPSBOT), "diagnose", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_the_table_shows_every_finding_with_its_evidence(env: dict[str, str]) -> None:
    result = _opsbot(env, "--alert", "GPUMemoryHigh", "--label", f"node={NODE}", "--label", "gpu=0")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"Diagnosis of alert GPUMemoryHigh (gpu=0, node={NODE})")
    assert "runbook: gpu-oom" in out
    findings = out.split("FINDINGS\n", 1)[1].split("\n\n", 1)[0]
    blocks = [b for b in re.split(r"\n(?=  \d+\. )", findings) if b.strip()]
    assert blocks and any("gpu-oom/kv-cache-pressure" in b for b in blocks)
    for block in blocks:  # each numbered finding is followed by at least one evidence line
        assert "evidence: " in block, block
    assert "PROPOSED FIXES" in out and "lower-gpu-memory-utilization@deployment" in out
    assert "id: 1" in out  # saved in the store


def test_json_is_one_diagnosis_object(env: dict[str, str]) -> None:
    result = _opsbot(env, "--workload", "inference/llama-3-8b", "--json")
    assert result.returncode == 0, result.stderr
    diagnosis = json.loads(result.stdout)
    assert diagnosis["trigger"] == {
        **diagnosis["trigger"],
        "kind": "workload",
        "namespace": "inference",
        "workload": "llama-3-8b",
    }
    live = [f for f in diagnosis["findings"] if not f["ruled_out"]]
    assert "gpu-oom/kv-cache-pressure" in [f["code"] for f in live]
    assert all(e["call"] and e["value"] for f in live for e in f["evidence"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of"),
        (["--alert", "X", "--question", "why?"], "exactly one of"),
        (["--workload", "llama-3-8b"], "NAMESPACE/NAME"),
        (["--question", "why?", "--label", "a=b"], "--label goes with --alert"),
        (["--alert", "X", "--label", "novalue"], "key=value"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = _opsbot(env, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_an_unwritable_store_warns_and_still_answers(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _opsbot(
        {**env, "OPSBOT_DB_PATH": str(blocker / "db.sqlite")}, "--question", "is llama-3-8b ok?"
    )
    assert result.returncode == 0, result.stderr
    assert "not saving the diagnosis" in result.stderr
    assert "Diagnosis of question" in result.stdout
