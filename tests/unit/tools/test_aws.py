"""ECR scan findings and EBS snapshot ages through boto3 against the lab's AWS: the counts and
ages the scenario's ``aws`` facts imply, images and volumes without a scan or snapshot said so,
and a dead, slow or failing endpoint returned as an error result on time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lab.aws.server import start_aws
from lab.httpserver import Fault, LabServer
from lab.kube import naming, volumes
from lab.process import free_port
from lab.scenario import loader
from tools import aws, base
from tools.toolbox import ClusterConfig, Toolbox

NOW = datetime(2025, 10, 14, 4, 0, 0, tzinfo=UTC)
REGISTRY = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com"
GATEWAY = f"{REGISTRY}/gateway:1.14.2"
VLLM = "vllm/vllm-openai:v0.11.0"
ROUTER = f"{REGISTRY}/router:2.0.1"
SCENARIO = f"""
name: aws-facts
cluster:
  nodes: [{{name: gpu-a, instance_type: g5.xlarge}}]
  pvcs:
    - {{name: model-cache-pvc, namespace: inference, phase: Bound, storage_class: gp3, size: 200Gi}}
    - {{name: prompts-pvc, namespace: inference, phase: Bound, storage_class: gp3, size: 10Gi}}
    - {{name: results-pvc, namespace: batch, phase: Bound, storage_class: gp3, size: 50Gi}}
aws:
  image_scans:
    - {{image: "{GATEWAY}", critical: 1, high: 4, medium: 9}}
    - {{image: "{VLLM}", high: 2}}
    - {{image: "{ROUTER}"}}
  snapshots:
    - {{pvc: inference/model-cache-pvc, at: -54h}}
    - {{pvc: inference/model-cache-pvc, at: -30h}}
    - {{pvc: batch/results-pvc, at: -170h}}
"""
FACTS = loader.load_text(SCENARIO)
CACHE = volumes.volume_id_for("inference", "model-cache-pvc")
PROMPTS = volumes.volume_id_for("inference", "prompts-pvc")
RESULTS = volumes.volume_id_for("batch", "results-pvc")
MARGIN = 2.0


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def lab_aws() -> Iterator[LabServer]:
    server = start_aws(FACTS, now=NOW)
    yield server
    server.stop()


def _box(monkeypatch: pytest.MonkeyPatch, url: str, *, timeout: float = 5.0) -> Toolbox:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
    config = ClusterConfig(
        name="lab",
        prometheus_url="http://127.0.0.1:9",
        kubecost_url="http://127.0.0.1:9",
        alertmanager_url="http://127.0.0.1:9",
    )
    return Toolbox([config], limits=base.Limits(timeout=timeout))


# -- ECR ---------------------------------------------------------------------------------------
def test_scan_counts_per_image_worst_first(
    lab_aws: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = aws.image_scan_findings(
        box=_box(monkeypatch, lab_aws.url), images=[ROUTER, VLLM, GATEWAY]
    )

    assert result.status == "ok", result.text
    assert FACTS.aws is not None
    expected = {
        s.image: {"CRITICAL": s.critical, "HIGH": s.high, "MEDIUM": s.medium}
        for s in FACTS.aws.image_scans
    }
    got = {e["image"]: e["counts"] for e in result.data}
    for image, counts in expected.items():
        assert {k: got[image].get(k, 0) for k in counts} == counts
    assert [e["image"] for e in result.data] == [GATEWAY, VLLM, ROUTER]
    top = result.data[0]["top"]
    assert len(top) == aws.TOP_FINDINGS
    assert [f["severity"] for f in top] == ["CRITICAL", "HIGH", "HIGH"]
    assert all(f["name"].startswith("CVE-") for f in top)
    assert result.call == f"ecr:DescribeImageScanFindings {ROUTER}, {VLLM}, {GATEWAY}"
    line = next(x for x in result.text.splitlines() if x.startswith(GATEWAY))
    assert line.split()[1:4] == ["1", "4", "9"]


def test_a_digest_reference_finds_the_same_scan(
    lab_aws: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = naming.image_id(VLLM)  # as a pod's imageID reports it: docker.io/...@sha256:...
    result = aws.image_scan_findings(box=_box(monkeypatch, lab_aws.url), images=[pinned])
    assert result.status == "ok"
    assert result.data[0]["counts"] == {"HIGH": 2}


def test_images_without_a_scan_say_so(lab_aws: LabServer, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown_tag = f"{REGISTRY}/gateway:9.9.9"
    elsewhere = "ghcr.io/acme/tokenizer:1.0"
    result = aws.image_scan_findings(
        box=_box(monkeypatch, lab_aws.url), images=[unknown_tag, GATEWAY, elsewhere]
    )
    assert result.status == "ok"
    assert [e["image"] for e in result.data] == [GATEWAY, unknown_tag, elsewhere]
    missing = {e["image"]: e["note"] for e in result.data if not e["scanned"]}
    assert "ImageNotFoundException" in missing[unknown_tag]
    assert "RepositoryNotFoundException" in missing[elsewhere]
    assert result.text.splitlines()[0] == "3 images; 1 scanned, 2 without a scan"
    assert f"{elsewhere}" in result.text and "no scan:" in result.text


def test_no_images_is_no_data(lab_aws: LabServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = aws.image_scan_findings(box=_box(monkeypatch, lab_aws.url), images=[])
    assert result.status == "no_data"


# -- EBS snapshots -----------------------------------------------------------------------------
def test_newest_snapshot_age_per_volume(
    lab_aws: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {CACHE: "inference/model-cache-pvc", PROMPTS: "inference/prompts-pvc"}
    result = aws.snapshot_ages(
        box=_box(monkeypatch, lab_aws.url),
        volume_ids=[CACHE, PROMPTS, RESULTS],
        now=NOW,
        names=names,
    )

    assert result.status == "ok", result.text
    assert FACTS.aws is not None
    newest: dict[str, timedelta] = {}
    for snap in FACTS.aws.snapshots:
        namespace, name = snap.pvc.split("/")
        volume = volumes.volume_id_for(namespace, name)
        newest[volume] = min(newest.get(volume, snap.at), snap.at)
    by_volume = {e["volume_id"]: e for e in result.data}
    assert by_volume[CACHE]["age_hours"] == pytest.approx(newest[CACHE].total_seconds() / 3600)
    assert by_volume[CACHE]["age_hours"] == pytest.approx(30.0)
    assert by_volume[CACHE]["completed_snapshots"] == 2
    assert by_volume[RESULTS]["age_hours"] == pytest.approx(170.0)
    assert by_volume[PROMPTS]["age_hours"] is None
    assert by_volume[PROMPTS]["note"] == "no completed snapshot"
    # the worst first: no snapshot, then the oldest
    assert [e["volume_id"] for e in result.data] == [PROMPTS, RESULTS, CACHE]
    assert result.text.splitlines()[0] == "3 volumes; 1 without a completed snapshot"
    assert f"{CACHE} (inference/model-cache-pvc)" in result.text
    assert result.call == (
        f"ec2:DescribeSnapshots OwnerIds=[self] Filters=[volume-id={CACHE},{PROMPTS},{RESULTS}]"
    )


# -- faults ------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["ecr", "ec2"])
def test_down_slow_and_failing(
    which: str, lab_aws: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def call(box: Toolbox) -> base.ToolResult:
        if which == "ecr":
            return aws.image_scan_findings(box=box, images=[GATEWAY])
        return aws.snapshot_ages(box=box, volume_ids=[CACHE], now=NOW)

    label = which.upper()
    down = call(_box(monkeypatch, f"http://127.0.0.1:{free_port()}"))
    assert down.status == "error" and down.error_kind == "unavailable"
    assert down.text.startswith(f"ERROR from aws (unavailable): cannot reach {label} at http://")

    lab_aws.fault = Fault(delay=4.0)
    started = time.monotonic()
    slow = call(_box(monkeypatch, lab_aws.url, timeout=1.0))
    elapsed = time.monotonic() - started
    assert slow.status == "error" and slow.error_kind == "timeout"
    assert f"{label} at {lab_aws.url}: no answer within" in slow.text
    assert 0.9 <= elapsed < 1.0 + MARGIN

    lab_aws.fault = Fault(status=500)
    lab_aws.clear()
    failing = call(_box(monkeypatch, lab_aws.url))
    assert failing.status == "error" and failing.error_kind == "server-error"
    assert label in failing.text
    assert len(lab_aws.calls("POST")) == base.Limits().attempts  # no hidden botocore retries


def test_an_unknown_cluster_is_refused(lab_aws: LabServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = aws.snapshot_ages(
        box=_box(monkeypatch, lab_aws.url), volume_ids=[CACHE], cluster="elsewhere"
    )
    assert result.status == "error" and "unknown cluster" in result.text
    assert lab_aws.calls() == []
