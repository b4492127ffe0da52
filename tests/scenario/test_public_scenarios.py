"""Every public scenario passes ``opsbot eval`` on the deterministic path, run as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

OPSBOT = Path(sys.executable).parent / "opsbot"
ROOT = Path(__file__).resolve().parents[2]


def test_every_public_scenario_passes() -> None:
    files = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    assert files
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "AWS_"))}
    result = subprocess.run(
        [str(OPSBOT), "eval", *files, "--json"],
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
