"""``opsbot lab validate`` through the installed console script: exit codes and messages."""

import subprocess
import sys
from pathlib import Path

OPSBOT = Path(sys.executable).parent / "opsbot"
EXAMPLE = str(Path(__file__).resolve().parents[3] / "scenarios" / "cache-pvc-pending.yaml")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OPSBOT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_valid_files_exit_zero(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\n")
    result = _run("lab", "validate", str(good), EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "2 valid, 0 invalid" in result.stdout


def test_one_bad_file_fails_the_run_and_is_named(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\ncluster: {nodes: [{name: a, instance_type: p4d.24xlarge, zone_: x}]}\n"
    )
    result = _run("lab", "validate", str(good), str(bad))
    assert result.returncode == 1
    assert f"{bad}: cluster.nodes[0].zone_: unknown key" in result.stderr
    assert "1 valid, 1 invalid" in result.stdout


def test_a_folder_validates_every_file_in_it(tmp_path: Path) -> None:
    for name in ["a", "b"]:
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\n")
    result = _run("lab", "validate", str(tmp_path))
    assert result.returncode == 0
    assert "2 valid" in result.stdout


def test_bad_settings_are_reported_before_any_command(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "OPSBOT_HTTP_PORT": "not-a-port"}
    result = subprocess.run(
        [str(OPSBOT), "version"], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert result.returncode == 2
    assert "OPSBOT_HTTP_PORT (http_port)" in result.stderr
