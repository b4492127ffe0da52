"""Every cataloged tool runs against the whole lab by its stable name, as the agent and CLI call it."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from pydantic import ValidationError

from bot import clients
from lab import up
from lab.scenario import loader
from tools import catalog, instance_types
from tools.base import ToolResult
from tools.toolbox import Toolbox

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "scenarios" / "gpu-underutilized-idle-replicas.yaml"
OPSBOT = Path(sys.executable).parent / "opsbot"

STABLE = [
    "prometheus_query",
    "prometheus_query_range",
    "logs_insights_query",
    "kubecost_allocation",
    "pod_logs",
    "k8s_events",
    "k8s_describe",
    "list_pods",
    "list_nodes",
    "karpenter_status",
    "gpu_fleet_summary",
    "gpu_metrics",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[up.Lab]:
    scenario = loader.load_file(SCENARIO)
    with (
        pytest.MonkeyPatch.context() as mp,
        up.Lab(scenario, workdir=tmp_path_factory.mktemp("lab")) as running,
    ):
        running.start(deliver_alerts=True)
        for key, value in running.env().items():
            if key.startswith("AWS_"):
                mp.setenv(key, value)  # boto3 reads its endpoints from the environment
        yield running


@pytest.fixture(scope="module")
def box(lab: up.Lab) -> Toolbox:
    return clients.build_toolbox(lab.settings(tool_timeout_seconds=10))


def _pod(lab: up.Lab) -> tuple[str, str]:
    workload = next(w for w in lab.scenario.cluster.workloads if w.pods)
    pods = workload.pods or []
    assert pods[0].name is not None
    return workload.namespace, pods[0].name


def _arguments(name: str, lab: up.Lab) -> dict[str, object]:
    namespace, pod = _pod(lab)
    node = lab.scenario.cluster.nodes[0].name
    return {
        "prometheus_query": {"query": "count(DCGM_FI_DEV_GPU_UTIL)"},
        "prometheus_query_range": {
            "query": "avg(DCGM_FI_DEV_GPU_UTIL)",
            "since": "2h",
            "step": "5m",
        },
        "logs_insights_query": {"query": "stats count(*) as n", "since": "24h"},
        "pod_logs": {"namespace": namespace, "pod": pod},
        "k8s_events": {"namespace": namespace},
        "k8s_describe": {"kind": "pod", "name": pod, "namespace": namespace},
        "gpu_metrics": {"node": node},
        "ecr_image_scan_findings": {"images": ["vllm/vllm-openai:v0.11.0"]},
        "ebs_snapshot_ages": {"volume_ids": ["vol-0123456789abcdef0"]},
        "logs_recent_errors": {"since": "24h"},
        "logs_token_usage_by_hour": {"since": "24h"},
        "logs_slow_requests_by_model": {"since": "24h"},
    }.get(name, {})


def test_the_stable_names_are_there() -> None:
    assert [spec.name for spec in catalog.TOOLS[: len(STABLE)]] == STABLE
    assert len(catalog.BY_NAME) == len(catalog.TOOLS)


@pytest.mark.parametrize("name", [spec.name for spec in catalog.TOOLS])
def test_each_tool_answers_from_the_lab(name: str, lab: up.Lab, box: Toolbox) -> None:
    result = catalog.get(name).run(box, _arguments(name, lab))
    assert result.tool and result.source and result.call
    assert result.status in ("ok", "no_data"), result.text
    assert result.cluster == lab.scenario.cluster.name
    assert len(result.text) <= box.limits.max_chars


def test_values_through_the_catalog(lab: up.Lab, box: Toolbox) -> None:
    gpus = catalog.get("prometheus_query").run(box, {"query": "count(DCGM_FI_DEV_GPU_UTIL)"})
    series = [
        k
        for k in (lab.scenario.metrics.series if lab.scenario.metrics else {})
        if k.startswith("DCGM_FI_DEV_GPU_UTIL{")
    ]
    assert str(len(series)) in gpus.text
    nodes = catalog.get("list_nodes").run(box, {"gpu_only": True})
    for node in lab.scenario.cluster.nodes:
        kind = instance_types.lookup(node.instance_type)
        assert (node.name in nodes.text) == bool(kind and kind.gpus)
    alerts = catalog.get("alertmanager_alerts").run(box, {})
    assert "GPUUnderutilized" in alerts.text


def test_arguments_are_validated() -> None:
    with pytest.raises(ValidationError, match="query"):
        catalog.get("prometheus_query").run(Toolbox.__new__(Toolbox), {})
    with pytest.raises(ValidationError, match="Extra inputs"):
        catalog.get("list_nodes").run(Toolbox.__new__(Toolbox), {"gpu_only": True, "colour": "red"})
    with pytest.raises(KeyError, match="unknown tool 'kubectl_delete'"):
        catalog.get("kubectl_delete")


def test_langchain_tool_gives_text_to_the_model_and_keeps_the_result(box: Toolbox) -> None:
    seen: list[ToolResult] = []
    tool = catalog.as_langchain(catalog.get("list_nodes"), box=box, on_result=seen.append)
    assert tool.name == "list_nodes"
    assert "gpu_only" in tool.args
    message = tool.invoke(
        {"type": "tool_call", "id": "call_1", "name": "list_nodes", "args": {"gpu_only": True}}
    )
    assert isinstance(message, ToolMessage)
    assert isinstance(message.artifact, ToolResult) and message.artifact.status == "ok"
    assert message.content == message.artifact.text
    assert seen == [message.artifact]


def _cli(lab: up.Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_"))}
    env.update(lab.env())
    return subprocess.run(
        [str(OPSBOT), "tools", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_cli_list_and_run(lab: up.Lab) -> None:
    listed = _cli(lab, "list")
    assert listed.returncode == 0
    for name in STABLE:
        assert name in listed.stdout
    ran = _cli(lab, "run", "list_nodes", "gpu_only=true", "--json")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["tool"] == "list_nodes" and result["status"] == "ok"
    text = _cli(lab, "run", "prometheus_query", "query=count(DCGM_FI_DEV_GPU_UTIL)")
    assert text.returncode == 0 and text.stdout.startswith("# prometheus_query [ok] prometheus")


def test_cli_errors(lab: up.Lab) -> None:
    unknown = _cli(lab, "run", "nope")
    assert unknown.returncode == 2 and "unknown tool 'nope'" in unknown.stderr
    bad_args = _cli(lab, "run", "prometheus_query", "query")
    assert bad_args.returncode == 2 and "key=value" in bad_args.stderr
    bad_query = _cli(lab, "run", "prometheus_query", "query=sum(")
    assert bad_query.returncode == 1
    assert "ERROR from prometheus (rejected)" in bad_query.stdout
