"""`opsbot lab up` and `lab generate`: everything starts, the env points at it, nothing outlives it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import yaml
from kubernetes import client, config
from prometheus_api_client import PrometheusConnect

from lab import up
from lab.scenario import loader
from tests.conftest import WaitFor

ROOT = Path(__file__).resolve().parents[3]
OPSBOT = Path(sys.executable).parent / "opsbot"
SCENARIO = ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml"


def _children(pid: int) -> set[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(p) for p in text)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_lab_serves_the_scenario_through_real_clients(tmp_path: Path) -> None:
    scenario = loader.load_file(SCENARIO)
    with up.Lab(scenario, workdir=tmp_path).start(llm_script=True, deliver_alerts=False) as lab:
        env = lab.env()
        api = client.CoreV1Api(config.new_client_from_config(config_file=env["KUBECONFIG"]))
        nodes = api.list_node().items
        assert {n.metadata.name for n in nodes} == {n.name for n in scenario.cluster.nodes}
        prom = PrometheusConnect(url=env["OPSBOT_PROMETHEUS_URL"], disable_ssl=True)
        assert prom.custom_query("count(DCGM_FI_DEV_FB_USED)")[0]["value"][1] != "0"
        logs = boto3.client(
            "logs",
            endpoint_url=env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
        assert groups == env["OPSBOT_LOG_GROUPS"].split(",")
        assert env["OPSBOT_LLM_BASE_URL"].endswith("/v1")
        assert env["SLACK_BOT_TOKEN"].startswith("xoxb-")
        assert lab.ready_seconds is not None and lab.ready_seconds > 0
        prometheus_pid = lab.prometheus._process.proc.pid  # type: ignore[union-attr]
    assert not _alive(prometheus_pid)


def test_ctrl_c_stops_every_process(tmp_path: Path, wait_for: WaitFor) -> None:
    env_file = tmp_path / "lab.env"
    proc = subprocess.Popen(
        [str(OPSBOT), "lab", "up", str(SCENARIO), "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(env_file.exists, timeout=60)
        lines = env_file.read_text().splitlines()
        assert any(
            line.startswith("export OPSBOT_PROMETHEUS_URL=http://127.0.0.1:") for line in lines
        )
        children = _children(proc.pid)
        assert len(children) == 2  # Prometheus and Alertmanager
        assert all(_alive(pid) for pid in children)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "export KUBECONFIG=" in out
    assert not [pid for pid in children if _alive(pid)]


def test_children_die_with_a_killed_lab(tmp_path: Path, wait_for: WaitFor) -> None:
    env_file = tmp_path / "lab.env"
    proc = subprocess.Popen(
        [str(OPSBOT), "lab", "up", str(SCENARIO), "--env-file", str(env_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(env_file.exists, timeout=60)
        children = _children(proc.pid)
        assert children
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not [pid for pid in children if _alive(pid)], timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_scenario_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nclustr: {}\n")
    result = subprocess.run(
        [str(OPSBOT), "lab", "up", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "clustr: unknown key" in result.stderr


def test_generate_writes_a_valid_fleet(tmp_path: Path) -> None:
    out = tmp_path / "fleet.yaml"
    result = subprocess.run(
        [
            str(OPSBOT),
            "lab",
            "generate",
            "--nodes",
            "12",
            "--gpus-per-node",
            "4",
            "--hours",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    scenario = loader.load_file(out)
    assert len(scenario.cluster.nodes) == 12
    assert {n.instance_type for n in scenario.cluster.nodes} == {"g5.12xlarge"}
    assert scenario.metrics is not None
    gpu_util = [k for k in scenario.metrics.series if k.startswith("DCGM_FI_DEV_GPU_UTIL")]
    assert len(gpu_util) == 48
    assert sum(w.replicas for w in scenario.cluster.workloads) == 12
    assert yaml.safe_load(out.read_text())["name"] == "fleet-12-nodes"


def test_generate_refuses_an_impossible_node(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(OPSBOT), "lab", "generate", "--nodes", "2", "--gpus-per-node", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no known instance type has 3 GPUs" in result.stderr
