"""The branches no public scenario reaches, on a public scenario changed in one telling way.

Each variant keeps everything else of its scenario, so the detector must tell the new cause
from the one the original shows: a host OOMKill instead of a probe kill, a store that does not
answer instead of one that refuses, a NodePool with nothing to blame but the cloud.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import clients
from bot.diagnose import subject as subject_mod
from bot.diagnose.detectors import karpenter, loading, network
from bot.diagnose.investigation import Investigation, Subject
from bot.diagnose.model import Finding, Trigger
from lab import up
from lab.scenario import loader

ROOT = Path(__file__).resolve().parents[4]
Change = Callable[[dict[str, Any]], None]


def _run(name: str, change: Change, tmp_path: Path) -> list[Finding]:
    data = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    change(data)
    scenario = loader.load_text(yaml.safe_dump(data))
    trigger = Trigger(kind="question", question=scenario.question or "")
    if not scenario.question:
        alert = scenario.alerts[0]
        trigger = Trigger(kind="alert", alertname=alert.labels["alertname"], labels=alert.labels)
    with pytest.MonkeyPatch.context() as mp, up.Lab(scenario, workdir=tmp_path) as lab:
        lab.start(deliver_alerts=False)
        for key, value in lab.env().items():
            if key.startswith("AWS_"):
                mp.setenv(key, value)
        box = clients.build_toolbox(lab.settings())
        inv = Investigation(box=box, trigger=trigger, subject=Subject(namespace="inference"))
        subject_mod.resolve(inv, default_namespace="inference")
        detectors = [*loading.DETECTORS, *karpenter.DETECTORS, *network.DETECTORS]
        return [f for d in detectors for f in d(inv) if not f.ruled_out]


def _pod(data: dict[str, Any], workload: str) -> dict[str, Any]:
    found = next(w for w in data["cluster"]["workloads"] if w["name"] == workload)
    pod: dict[str, Any] = found["pods"][0]
    return pod


def _fixes(findings: list[Finding]) -> set[str]:
    return {f"{x.code}@{x.target}" for f in findings for x in f.fixes}


def test_host_oomkill_while_loading_is_oom_during_load(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        pod = _pod(data, "llama-3-70b")
        pod["last_terminated"] = {"reason": "OOMKilled", "exit_code": 137, "finished_at": "-4m"}
        data["cluster"]["events"] = []  # no probe kills this time

    findings = _run("startup-probe-kills-70b-load", change, tmp_path)
    assert {f.code for f in findings} == {loading.OOM_LOAD}
    assert "increase-memory-limit@deployment/inference/llama-3-70b" in _fixes(findings)
    assert any("Loading safetensors" in e.value for e in findings[0].evidence)


def test_store_that_does_not_answer_is_source_unreachable(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        _pod(data, "llama-3-1-70b")["previous_logs"] = (
            '(APIServer pid=1) requests.exceptions.ConnectionError: (MaxRetryError("HTTPSConnection'
            "Pool(host='huggingface.co', port=443): Max retries exceeded with url: /meta-llama/"
            "Llama-3.1-70B-Instruct/resolve/main/config.json (Caused by ConnectTimeoutError("
            "'Connection to huggingface.co timed out. (connect timeout=10)'))\"))\n"
        )

    codes = {f.code for f in _run("hf-gated-repo-forbidden", change, tmp_path)}
    assert codes == {loading.UNREACHABLE}


def test_pool_with_nothing_to_blame_is_insufficient_capacity(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        pool = data["cluster"]["nodepools"][0]
        for requirement in pool["requirements"]:
            if requirement["key"] == "karpenter.sh/capacity-type":
                requirement["values"] = ["spot", "on-demand"]

    findings = _run("karpenter-spot-only-p5", change, tmp_path)
    assert {f.code for f in findings} == {karpenter.CAPACITY}
    assert _fixes(findings) == {"add-instance-types@nodepool/gpu-spot"}


def test_a_bound_cache_pvc_is_offered_for_a_pending_one(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["cluster"]["pvcs"].append(
            {"name": "model-cache-pvc", "namespace": "inference", "phase": "Bound", "size": "1Ti"}
        )

    findings = _run("cache-pvc-pending", change, tmp_path)
    assert _fixes(findings) == {"use-model-cache-pvc@deployment/inference/mixtral-8x7b"}


def test_repeated_resolver_errors_are_dns_failure(tmp_path: Path) -> None:
    line = '{"event":"inference_request","model":"llama-3-8b","status":502,"error":"httpx.ConnectError: [Errno -3] Temporary failure in name resolution"}'

    def change(data: dict[str, Any]) -> None:
        group = data["logs"]["/eks/genai-platform/inference"]
        group += [
            {"at": at, "stream": "inference-gateway", "message": line}
            for at in ("-9m", "-6m", "-2m")
        ]

    codes = {f.code for f in _run("gateway-timeout-long-reasoning", change, tmp_path)}
    assert codes == {network.DNS, network.REQUEST_TIMEOUT}


def test_nccl_timeout_without_a_hardware_xid_gets_its_nccl_fix(tmp_path: Path) -> None:
    """The same watchdog lines with a healthy GPU: the timeout is the finding and its fix; the
    group already uses EFA, so only the timeout is proposed."""

    def change(data: dict[str, Any]) -> None:
        series = data["metrics"]["series"]
        for key in [k for k in series if k.startswith("DCGM_FI_DEV_XID_ERRORS")]:
            series[key] = "0x59"

    findings = _run("nccl-timeout-after-xid74-nvlink", change, tmp_path)
    assert {f.code for f in findings} == {network.NCCL}
    assert _fixes(findings) == {
        "increase-nccl-timeout@deployment/inference/llama-3-1-405b-head",
        "increase-nccl-timeout@deployment/inference/llama-3-1-405b-worker",
    }


def test_nccl_timeout_after_a_hardware_xid_proposes_no_nccl_fix(tmp_path: Path) -> None:
    findings = _run("nccl-timeout-after-xid74-nvlink", lambda data: None, tmp_path)
    nccl = [f for f in findings if f.code == network.NCCL]
    assert len(nccl) == 1 and nccl[0].fixes == []
    assert any("XID_ERRORS = 74" in e.value for e in nccl[0].evidence)


def test_unreachable_store_without_a_cache_pvc_proposes_nothing(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["cluster"]["pvcs"] = []
        for workload in data["cluster"]["workloads"]:
            workload.pop("volumes", None)
            for container in workload["containers"]:
                container.pop("volumeMounts", None)

    findings = _run("hf-hub-unreachable-egress-blocked", change, tmp_path)
    assert {f.code for f in findings} == {loading.UNREACHABLE}
    assert _fixes(findings) == set()


def test_a_cache_pvc_the_workload_already_mounts_is_not_offered_again(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        mistral = next(w for w in data["cluster"]["workloads"] if w["name"] == "mistral-7b")
        mistral["volumes"] = [
            {"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache-pvc"}}
        ]
        mistral["containers"][0]["volumeMounts"] = [{"name": "cache", "mountPath": "/models"}]

    findings = _run("hf-hub-unreachable-egress-blocked", change, tmp_path)
    assert {f.code for f in findings} == {loading.UNREACHABLE}
    assert _fixes(findings) == set()


def test_pods_crashing_on_their_own_are_no_sign_of_zone_trouble(tmp_path: Path) -> None:
    """Both crash-looping replicas in one zone: the placement is a risk worth saying (low
    confidence), but their crashes are the store's fault, not evidence that the zone is failing."""

    def change(data: dict[str, Any]) -> None:
        for node in data["cluster"]["nodes"]:
            if node["name"].startswith("ip-10-1-6-19"):
                node["zone"] = "ap-northeast-2c"

    findings = _run("hf-hub-unreachable-egress-blocked", change, tmp_path)
    zone = [f for f in findings if f.code == network.ONE_ZONE]
    assert len(zone) == 1 and zone[0].confidence == 0.5
    assert all("not ready" not in e.value for e in zone[0].evidence)
    assert loading.UNREACHABLE in {f.code for f in findings}
