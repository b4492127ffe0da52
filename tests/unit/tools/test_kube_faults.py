"""The Kubernetes tools when the API server is down, slow or failing, when output is huge, and
when secrets sit in logs, env and events: always a ToolResult, on time, within budget, clean."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from lab.kube.cluster import FakeCluster
from lab.kube.server import Fault
from lab.kube.store import LogKey
from lab.process import free_port
from lab.scenario import loader
from tools import base, kube, kube_api
from tools.toolbox import ClusterConfig, Toolbox

POD = "llama-3-8b-5c7d9f6b8-abcde"
SMALL = f"""
name: kube-tool-faults
cluster:
  nodes:
    - {{name: gpu-a, instance_type: g5.xlarge, nodepool: gpu}}
  workloads:
    - name: llama-3-8b
      labels: {{app: inference, model: llama-3-8b}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
      pods:
        - {{name: {POD}, node: gpu-a}}
"""
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
OPENAI = "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2"
PASSWORD = "s3cr3t-pa55w0rd"
SECRETS = (HF, SLACK, AWS_KEY, OPENAI, PASSWORD)


def _box(kubeconfig: Path, *, timeout: float = 5.0, output_tokens: int = 2000) -> Toolbox:
    config = ClusterConfig(
        name="lab",
        kubeconfig=str(kubeconfig),
        prometheus_url="http://127.0.0.1:9",
        kubecost_url="http://127.0.0.1:9",
        alertmanager_url="http://127.0.0.1:9",
    )
    return Toolbox([config], limits=base.Limits(timeout=timeout, output_tokens=output_tokens))


@pytest.fixture
def boxes() -> Iterator[Callable[..., Toolbox]]:
    """Makes Toolboxes and closes the API clients they built."""
    made: list[Toolbox] = []

    def make(kubeconfig: Path, *, timeout: float = 5.0, output_tokens: int = 2000) -> Toolbox:
        box = _box(kubeconfig, timeout=timeout, output_tokens=output_tokens)
        made.append(box)
        return box

    yield make
    for box in made:
        with contextlib.suppress(base.ToolError):  # a kubeconfig that never loaded
            kube_api.client(box, box.cluster()).close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster.from_scenario(loader.load_text(SMALL)) as running:
        running.write_kubeconfig(tmp_path / "kubeconfig")
        yield running


# -- down, slow, failing -------------------------------------------------------------------
def test_backend_down(tmp_path: Path, boxes: Callable[..., Toolbox]) -> None:
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    box = boxes(kubeconfig, timeout=3.0)
    started = time.monotonic()
    result = kube.list_pods(box=box)
    assert time.monotonic() - started < 3.0 + 2.0
    assert result.status == "error" and result.error_kind == "unavailable"
    assert result.source == "kubernetes"
    assert result.text.startswith(
        f"ERROR from kubernetes (unavailable): cannot connect to the API server at "
        f"http://127.0.0.1:{port}: Failed to establish a new connection"
    )
    assert "Connection refused" in result.text
    assert result.call == "GET /api/v1/namespaces/inference/pods"


def test_missing_credentials_are_an_error_result(
    tmp_path: Path, boxes: Callable[..., Toolbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = kube.list_nodes(box=boxes(tmp_path / "missing"))
    assert result.status == "error" and result.error_kind == "unavailable"
    assert f"cannot load credentials from {tmp_path / 'missing'}" in result.text

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not inside a pod
    in_cluster = Toolbox(
        [
            ClusterConfig(
                name="lab",
                prometheus_url="http://127.0.0.1:9",
                kubecost_url="http://127.0.0.1:9",
                alertmanager_url="http://127.0.0.1:9",
            )
        ]
    )
    result = kube.list_nodes(box=in_cluster)
    assert result.error_kind == "unavailable"
    assert "cannot load credentials from in-cluster service account" in result.text


@pytest.mark.parametrize(
    "call",
    [
        lambda box: kube.list_pods(box=box),
        lambda box: kube.describe(box=box, kind="pod", name=POD),
        lambda box: kube.gpu_allocation(box=box),
    ],
    ids=["list_pods", "describe", "gpu_allocation"],
)
def test_slow_past_the_timeout(
    cluster: FakeCluster,
    tmp_path: Path,
    boxes: Callable[..., Toolbox],
    call: Callable[[Toolbox], base.ToolResult],
) -> None:
    box = boxes(tmp_path / "kubeconfig", timeout=1.0)
    cluster.server.fault = Fault(status=None, delay=4.0)
    started = time.monotonic()
    result = call(box)
    elapsed = time.monotonic() - started
    assert result.status == "error" and result.error_kind == "timeout"
    assert result.text == (
        f"ERROR from kubernetes (timeout): no answer from the API server at {cluster.url} "
        "within 1.0s"
    )
    assert 0.95 <= elapsed < 1.0 + 2.0
    assert len(cluster.server.calls()) == 1  # one attempt: the time is gone, no retry


def test_answering_500_is_retried_then_reported(
    cluster: FakeCluster, tmp_path: Path, boxes: Callable[..., Toolbox]
) -> None:
    box = boxes(tmp_path / "kubeconfig", timeout=3.0)
    cluster.server.fault = Fault(status=500, message="etcdserver: request timed out")
    started = time.monotonic()
    result = kube.list_nodes(box=box)
    assert time.monotonic() - started < 3.0 + 2.0
    assert result.status == "error" and result.error_kind == "server-error"
    assert result.text == (
        "ERROR from kubernetes (server-error): HTTP 500: etcdserver: request timed out "
        "(InternalError)"
    )
    assert len(cluster.server.calls()) == box.limits.attempts  # no hidden client retries


def test_a_passing_503_is_absorbed_by_the_retry(
    cluster: FakeCluster, tmp_path: Path, boxes: Callable[..., Toolbox]
) -> None:
    cluster.server.fault = Fault(status=503, times=1)
    result = kube.list_pods(box=boxes(tmp_path / "kubeconfig"))
    assert result.status == "ok" and [p["name"] for p in result.data] == [POD]
    assert [r.status for r in cluster.server.calls()] == [503, 200]


def test_refusals_carry_the_api_message_and_are_not_retried(
    cluster: FakeCluster, tmp_path: Path, boxes: Callable[..., Toolbox]
) -> None:
    box = boxes(tmp_path / "kubeconfig")
    cluster.server.fault = Fault(
        status=403,
        message='pods is forbidden: User "opsbot" cannot list resource "pods"',
        times=1,
    )
    forbidden = kube.list_pods(box=box)
    assert forbidden.error_kind == "rejected"
    assert 'HTTP 403: pods is forbidden: User "opsbot" cannot list resource "pods"' in (
        forbidden.text
    )
    assert len(cluster.server.calls()) == 1

    selector = kube.list_pods(box=box, field_selector="spec.bogus=x")
    assert selector.error_kind == "rejected"
    assert "field label not supported: spec.bogus" in selector.text

    missing = kube.describe(box=box, kind="deployment", name="nope")
    assert missing.error_kind == "not-found"
    assert 'deployments.apps "nope" not found' in missing.text


def test_bad_arguments_are_refused_before_any_request(
    cluster: FakeCluster, tmp_path: Path, boxes: Callable[..., Toolbox]
) -> None:
    box = boxes(tmp_path / "kubeconfig")
    results = [
        kube.pod_logs(box=box, pod=POD, grep="(unclosed"),
        kube.events(box=box, kind="gizmo", name="x"),
        kube.events(box=box, since="yesterday"),
        kube.describe(box=box, kind="service", name="x"),
        kube.list_pods(box=box, cluster="elsewhere"),
    ]
    assert [r.error_kind for r in results] == ["rejected"] * 5
    assert "invalid grep regex '(unclosed'" in results[0].text
    assert "unknown kind 'gizmo'" in results[1].text
    assert "not a duration: 'yesterday'" in results[2].text
    assert "describe supports pod, deployment and node" in results[3].text
    assert "unknown cluster 'elsewhere' (configured: lab)" in results[4].text
    assert cluster.server.calls() == []


# -- budget --------------------------------------------------------------------------------
def test_a_50000_line_log_fits_the_budget_and_keeps_the_errors(
    cluster: FakeCluster, tmp_path: Path, boxes: Callable[..., Toolbox]
) -> None:
    lines = [f"INFO 10-14 03:{i // 60 % 60:02d}:{i % 60:02d} step {i} ok" for i in range(50_000)]
    lines[1_234] = "ERROR engine: CUDA error: an illegal memory access was encountered"
    lines[31_337] = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    cluster.store.set_logs(LogKey("inference", POD, "vllm"), "\n".join(lines) + "\n")
    box = boxes(tmp_path / "kubeconfig", output_tokens=2000)

    result = kube.pod_logs(box=box, pod=POD, tail_lines=None)
    assert result.status == "ok" and result.data["lines_read"] == 50_000
    assert len(result.text) <= base.Limits(output_tokens=2000).max_chars
    assert lines[1_234] in result.text and lines[31_337] in result.text
    assert lines[-1] in result.text  # the newest lines stay
    assert result.truncated and result.cut is not None
    assert result.cut.startswith("kept ") and "of 50,000 lines" in result.cut
    assert "lines omitted)" in result.text


def test_many_events_keep_warnings_when_cut(tmp_path: Path, boxes: Callable[..., Toolbox]) -> None:
    doc = yaml.safe_load(SMALL)
    doc["cluster"]["events"] = [
        {
            "involved": f"pod/inference/{POD}",
            "type": "Warning" if i % 10 == 0 else "Normal",
            "reason": "Unhealthy" if i % 10 == 0 else "Pulled",
            "message": f"event number {i} " + "x" * 60,
            "last_seen": f"-{i + 1}m",
        }
        for i in range(300)
    ]
    with FakeCluster.from_scenario(loader.load_text(yaml.safe_dump(doc))) as running:
        box = boxes(running.write_kubeconfig(tmp_path / "kubeconfig"))
        result = kube.events(box=box)
    assert len(result.data) == 300 and result.data[0]["message"].startswith("event number 0 ")
    assert len(result.text) <= box.limits.max_chars
    assert result.truncated and result.cut is not None
    assert "of 300 events (Warnings kept first" in result.cut
    shown = [line for line in result.text.splitlines() if "event number" in line]
    assert len(shown) > 30
    assert all("Warning" in line for line in shown[:30])  # all 30 Warnings before any Normal


def test_many_nodes_fit_the_budget_problems_first(
    tmp_path: Path, boxes: Callable[..., Toolbox]
) -> None:
    doc = yaml.safe_load(SMALL)
    doc["cluster"]["nodes"] = [
        {"name": f"gpu-{i:03d}", "instance_type": "p4d.24xlarge", "ready": i != 250}
        for i in range(300)
    ]
    doc["cluster"]["workloads"][0]["pods"][0]["node"] = "gpu-000"
    with FakeCluster.from_scenario(loader.load_text(yaml.safe_dump(doc))) as running:
        box = boxes(running.write_kubeconfig(tmp_path / "kubeconfig"))
        result = kube.list_nodes(box=box, gpu_only=True)
    assert len(result.data) == 300 and len(result.text) <= box.limits.max_chars
    assert result.text.startswith("300 GPU nodes: 299 Ready, 1 not Ready")
    assert result.text.splitlines()[2].startswith("gpu-250 ")  # the sick one heads the table
    assert result.cut is not None and result.cut.endswith("of 300 nodes")


# -- redaction -----------------------------------------------------------------------------
LEAKY = f"""
name: kube-tool-secrets
cluster:
  nodes:
    - {{name: gpu-a, instance_type: g5.xlarge}}
  workloads:
    - name: llama-3-8b
      labels: {{app: inference}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--api-key", "{OPENAI}"]
          env:
            - {{name: HF_TOKEN, value: "{HF}"}}
            - {{name: DB_PASSWORD, value: "{PASSWORD}"}}
            - {{name: NOTIFY_HOOK, value: "{SLACK}"}}
            - {{name: HF_HOME, value: /models}}
      pods:
        - name: {POD}
          node: gpu-a
          restarts: 1
          last_terminated: {{reason: Error, exit_code: 1, finished_at: -5m}}
          waiting_reason: CrashLoopBackOff
          logs: |
            INFO starting with HF_TOKEN={HF}
            ERROR posting to slack with token {SLACK} failed
          previous_logs: |
            ERROR s3 download failed for AWS_ACCESS_KEY_ID={AWS_KEY}
            Traceback: password={PASSWORD}
  events:
    - involved: pod/inference/{POD}
      type: Warning
      reason: Failed
      message: "Failed to pull image: Authorization: Bearer {HF} rejected, key {AWS_KEY}"
"""


def test_secrets_never_leave(tmp_path: Path, boxes: Callable[..., Toolbox]) -> None:
    with FakeCluster.from_scenario(loader.load_text(LEAKY)) as running:
        box = boxes(running.write_kubeconfig(tmp_path / "kubeconfig"))
        results = [
            kube.pod_logs(box=box, pod=POD),
            kube.pod_logs(box=box, pod=POD, previous=True),
            kube.pod_logs(box=box, pod=POD, grep="token|password|KEY"),
            kube.events(box=box),
            kube.events(box=box, kind="pod", name=POD),
            kube.describe(box=box, kind="pod", name=POD),
            kube.describe(box=box, kind="deployment", name="llama-3-8b"),
            kube.describe(box=box, kind="node", name="gpu-a"),
            kube.list_pods(box=box),
            kube.list_deployments(box=box),
        ]
    assert all(r.status == "ok" for r in results), [r.text for r in results if not r.ok]
    for result in results:
        dumped = result.model_dump_json()
        for secret in SECRETS:
            assert secret not in result.text, (result.tool, secret)
            assert secret not in dumped, (result.tool, secret)
    assert "REDACTED" in results[0].text and "REDACTED" in results[3].text
    env = results[5].data["containers"][0]["env"]
    assert env[-1] == {"name": "HF_HOME", "value": "/models"}  # harmless values stay readable
