"""The layer contracts of STYLE.md hold, and really break when a module reaches the wrong way.

Each case copies the packages to a temporary folder, adds one offending import and runs
import-linter there (the copy shadows the installed packages through PYTHONPATH).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in ["bot", "tools", "lab"]:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_project_keeps_its_contracts(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("tools/uses_bot.py", "from bot import config\n", "Layers point down"),
        ("bot/uses_lab.py", "import lab.scenario.loader\n", "Layers point down"),
        ("bot/uses_sdk.py", "import kubernetes.client\n", "Only tools/ talks to outside systems"),
        ("bot/diagnose/uses_slack.py", "import slack_bolt\n", "Only bot.slack imports slack_bolt"),
    ],
)
def test_a_wrong_way_import_breaks_the_check(
    tree: Path, module: str, line: str, contract: str
) -> None:
    (tree / module).write_text(line)
    result = _lint(tree)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if "BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout
