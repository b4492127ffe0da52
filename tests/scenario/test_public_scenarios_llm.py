"""Every public scenario passes ``opsbot eval --llm scripted``, run as a user would: the agent
answers on the lab's scripted model, within the budgets issue 6 sets for scripted diagnoses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

OPSBOT = Path(sys.executable).parent / "opsbot"
ROOT = Path(__file__).resolve().parents[2]
MAX_CALLS = 4
MAX_PROMPT_TOKENS = 6000


def test_every_public_scenario_passes_with_the_scripted_model() -> None:
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    scripts = {
        data["name"]: data["llm_script"]
        for data in (yaml.safe_load(p.read_text()) for p in files)
        if data.get("llm_script")
    }
    assert len(scripts) >= 8
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "AWS_"))}
    result = subprocess.run(
        [str(OPSBOT), "eval", *map(str, files), "--llm", "scripted", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    failed = [s for s in report["scenarios"] if not s["passed"]]
    details = "\n".join(
        f"{s['name']}:\n" + "\n".join(f"    - {f}" for f in s["failures"]) for s in failed
    )
    assert not failed, f"{len(failed)} of {len(files)} scenarios failed:\n{details}"
    assert result.returncode == 0
    assert report["summary"]["total"] == len(files) == report["summary"]["passed"]
    for entry in report["scenarios"]:
        assert entry["mode"] == "llm", entry["name"]
        assert 0 < entry["prompt_tokens_max"] <= entry["prompt_tokens"], entry["name"]
        script = scripts.get(entry["name"])
        if script is None:  # no script: the model gives its final text at once
            assert entry["llm_calls"] == 1, entry["name"]
            continue
        # the whole script was played, one call per turn, within the budgets
        assert entry["llm_calls"] == len(script) <= MAX_CALLS, entry["name"]
        assert entry["prompt_tokens_max"] <= MAX_PROMPT_TOKENS, entry["name"]
