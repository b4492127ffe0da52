"""Unknown is not OK: a check with no data, or whose source is down, says so and why.

One lab with a NotReady GPU node, no model pods, no metrics and no costs; then the same checks
with every backend at an address nothing answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import Settings, Thresholds
from bot.diagnose.model import CheckResult
from bot.reports import checks
from lab import up
from lab.scenario import loader
from tools.base import ToolResult

AskFor = Callable[[Settings], checks.Ask]
PROMETHEUS_CHECKS = ["error-rate", "p99-latency", "gpu-utilization", "gpu-memory"]

EMPTY = """
name: t-check-empty
cluster:
  nodes:
    - {name: gpu-a, instance_type: g6.xlarge}
    - {name: gpu-b, instance_type: g6.xlarge, ready: false}
    - {name: cpu-a, instance_type: m5.2xlarge}
  pods:
    - {name: coredns-7d9f6c5b8-x2k4p, namespace: kube-system, node: cpu-a, containers: [{name: coredns, image: "coredns/coredns:1.11.1"}]}
"""


@pytest.fixture(scope="module")
def empty_lab() -> Iterator[up.Lab]:
    with up.Lab(loader.load_text(EMPTY)) as lab:
        lab.start(deliver_alerts=False)
        yield lab


def _run(ask: checks.Ask) -> dict[str, CheckResult]:
    results = checks.run_checks(ask, thresholds=Thresholds(), namespace="inference")
    return {r.id: r for r in results}


def test_no_data_is_unknown_and_a_notready_gpu_node_fails(
    empty_lab: up.Lab, ask_for: AskFor
) -> None:
    got = _run(ask_for(empty_lab.settings()))

    nodes = got["gpu-nodes-ready"]
    assert nodes.status == "fail"
    assert nodes.value == "1/2 Ready; NotReady: gpu-b"
    (down,) = [e for e in nodes.evidence if e.where]
    assert down.where == "node/gpu-b" and "NodeStatusUnknown" in down.value

    pods = got["model-pods-running"]  # kube-system has a pod; the inference namespace none
    assert pods.status == "unknown" and pods.value == "no model pods in namespace inference"

    for check_id in [*PROMETHEUS_CHECKS, "daily-cost"]:
        r = got[check_id]
        assert r.status == "unknown", r
        assert r.value.startswith("no data"), r
        assert r.evidence[0].call and r.evidence[0].value == r.value
    assert "inference_request_total" in got["error-rate"].value
    assert "inference_request_duration_seconds_bucket" in got["p99-latency"].evidence[0].call
    assert "DCGM_FI_DEV_FB_FREE" in got["gpu-memory"].evidence[0].call
    assert got["daily-cost"].evidence[0].source == "kubecost"


def test_unreachable_sources_are_unknown_never_ok(
    empty_lab: up.Lab, ask_for: AskFor, closed_url: str, closed_kubeconfig: Path
) -> None:
    settings = empty_lab.settings(
        prometheus_url=closed_url, kubecost_url=closed_url, kubeconfig=closed_kubeconfig
    )
    got = _run(ask_for(settings))

    assert [r.status for r in got.values()] == ["unknown"] * 7
    for check_id in ["gpu-nodes-ready", "model-pods-running"]:
        assert got[check_id].value.startswith("kubernetes unreachable: "), got[check_id]
    for check_id in PROMETHEUS_CHECKS:
        value = got[check_id].value
        assert value.startswith("prometheus unreachable: cannot connect to"), value
        assert closed_url in value
    assert "DCGM_FI_DEV_GPU_UTIL[24h]" in got["gpu-utilization"].evidence[0].call
    cost = got["daily-cost"]
    assert cost.value.startswith("kubecost unreachable: cannot connect to")
    assert "window=" in cost.evidence[0].call and cost.evidence[0].source == "kubecost"


def test_a_check_that_breaks_is_unknown_and_the_others_still_run() -> None:
    def ask(tool: str, /, **arguments: object) -> ToolResult:
        raise RuntimeError(f"{tool} exploded")

    got = _run(ask)
    assert [r.status for r in got.values()] == ["unknown"] * 7
    assert got["daily-cost"].value == "the check failed: RuntimeError: kubecost_daily_cost exploded"
