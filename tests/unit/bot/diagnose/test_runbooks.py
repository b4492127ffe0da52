"""The runbooks load, carry SCENARIOS.md's codes where they belong, and are picked right."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.diagnose import codes, runbooks
from tools import catalog

REPO_RUNBOOKS = Path(__file__).resolve().parents[4] / "runbooks"

# SCENARIOS.md v1, copied here on purpose: these codes never change, whatever codes.py becomes.
V1_FINDINGS = (
    "gpu-oom/kv-cache-pressure",
    "gpu-oom/batch-too-large",
    "gpu-oom/model-too-large",
    "gpu-oom/context-too-long",
    "gpu-oom/expected-preallocation",
    "network-latency/nccl-timeout",
    "network-latency/dns-failure",
    "network-latency/request-timeout",
    "network-latency/single-zone-replicas",
    "model-loading-failure/download-forbidden",
    "model-loading-failure/source-unreachable",
    "model-loading-failure/oom-during-load",
    "model-loading-failure/cache-pvc-pending",
    "model-loading-failure/startup-probe-too-short",
    "karpenter-provisioning-failure/insufficient-capacity",
    "karpenter-provisioning-failure/single-zone",
    "karpenter-provisioning-failure/spot-only",
    "karpenter-provisioning-failure/nodepool-limit",
    "gpu-hardware-fault/xid-error",
    "gpu-hardware-fault/ecc-double-bit",
    "gpu-hardware-fault/thermal",
    "gpu-underutilized/idle-replicas",
    "inference-latency-high/queueing",
    "inference-latency-high/preemption",
    "cost/idle-gpu-spend",
    "cost/scale-out",
    "cost/on-demand-shift",
)

TEAM_ALERTS = {
    "GPUMemoryHigh": "gpu-oom",
    "GPUTemperatureHigh": "gpu-hardware-fault",
    "GPUXidError": "gpu-hardware-fault",
    "GPUEccDoubleBitError": "gpu-hardware-fault",
    "GPUUnderutilized": "gpu-underutilized",
    "InferenceLatencyHigh": "inference-latency-high",
    "InferenceErrorRateHigh": "inference-error-rate-high",
    "ModelPodRestarting": "model-pod-restarting",
    "ModelPodNotReady": "model-loading-failure",
    "ModelPodPending": "karpenter-provisioning-failure",
    "KarpenterNodeClaimNotLaunched": "karpenter-provisioning-failure",
    "NCCLTimeout": "network-latency",
    "InferenceRequestTimeout": "network-latency",
    "DailyCostExceeded": "cost",
    "GPUCostSpike": "cost",
}


@pytest.fixture(scope="module")
def loaded() -> dict[str, runbooks.Runbook]:
    return runbooks.load()


# --- the shipped runbooks ---------------------------------------------------------------------


def test_every_runbook_id_loads_from_the_repo_folder(loaded: dict[str, runbooks.Runbook]) -> None:
    assert runbooks.DEFAULT_FOLDER == REPO_RUNBOOKS
    assert set(loaded) == codes.RUNBOOK_IDS
    for runbook_id, runbook in loaded.items():
        assert runbook.id == runbook_id
        assert runbook.title
        assert runbook.body.startswith("# ")


def test_an_explicit_folder_is_used(tmp_path: Path) -> None:
    folder = shutil.copytree(REPO_RUNBOOKS, tmp_path / "elsewhere")
    assert set(runbooks.load(folder)) == codes.RUNBOOK_IDS


@pytest.mark.parametrize("code", V1_FINDINGS)
def test_each_v1_finding_code_is_in_exactly_the_runbook_of_its_prefix(
    loaded: dict[str, runbooks.Runbook], code: str
) -> None:
    assert code in codes.FINDING_CODES
    owners = [r.id for r in loaded.values() if code in r.findings]
    assert owners == [code.split("/", maxsplit=1)[0]]


def test_every_finding_code_is_documented_in_its_runbook(
    loaded: dict[str, runbooks.Runbook],
) -> None:
    documented = {code for r in loaded.values() for code in r.findings}
    assert documented == codes.FINDING_CODES
    for runbook in loaded.values():
        for code in runbook.findings:
            assert f"`{code}`" in runbook.body, f"{runbook.id}: {code} not explained in the prose"


@pytest.mark.parametrize("runbook_id", ["inference-error-rate-high", "model-pod-restarting"])
def test_delegating_runbooks_have_no_findings_and_say_so(
    loaded: dict[str, runbooks.Runbook], runbook_id: str
) -> None:
    runbook = loaded[runbook_id]
    assert runbook.findings == {}
    assert "delegates" in runbook.body


def test_alert_names_are_unique_and_the_teams_alerts_are_answered(
    loaded: dict[str, runbooks.Runbook],
) -> None:
    names = [a for r in loaded.values() for a in r.alerts]
    assert len(names) == len(set(names))
    owners = {r.id: r for r in loaded.values()}
    assert {a: r.id for r in owners.values() for a in r.alerts} == TEAM_ALERTS


def test_the_prose_uses_the_tools_and_fixes_the_front_matter_names(
    loaded: dict[str, runbooks.Runbook],
) -> None:
    for runbook in loaded.values():
        for name in runbook.tools:
            assert name in catalog.BY_NAME
            assert f"`{name}`" in runbook.body, f"{runbook.id}: tool {name} unused in the prose"
        for fix in runbook.fixes:
            assert f"`{fix}`" in runbook.body, f"{runbook.id}: fix {fix} not described"


def test_the_prose_has_the_sections_an_on_call_engineer_looks_for(
    loaded: dict[str, runbooks.Runbook],
) -> None:
    for runbook in loaded.values():
        for section in ("## Symptoms", "## How to diagnose", "## Fixes"):
            assert section in runbook.body, f"{runbook.id}: no {section!r}"
        if runbook.findings:
            assert "## Findings and their look-alikes" in runbook.body, runbook.id


def test_the_prose_avoids_the_reference_guides_mistakes(
    loaded: dict[str, runbooks.Runbook],
) -> None:
    text = "\n".join(r.body for r in loaded.values())
    assert "DCGM_FI_DEV_FB_USED / DCGM_FI_DEV_FB_FREE" not in text
    assert "$labels.node" not in text
    assert "155,156" not in text
    assert "kubecost_cluster_cost_daily" not in text
    assert "kubecost_gpu_cost_hourly" not in text
    assert not re.search(r"^\s*--\s", text, re.MULTILINE), "Logs Insights comments start with #"


def test_symptom_order_covers_every_runbook_once() -> None:
    assert sorted(runbooks.SYMPTOM_ORDER) == sorted(codes.RUNBOOK_IDS)


# --- selection --------------------------------------------------------------------------------


@pytest.mark.parametrize(("alertname", "expected"), sorted(TEAM_ALERTS.items()))
def test_for_alert(loaded: dict[str, runbooks.Runbook], alertname: str, expected: str) -> None:
    runbook = runbooks.for_alert(loaded, alertname)
    assert runbook is not None
    assert runbook.id == expected


@pytest.mark.parametrize("alertname", ["gpumemoryhigh", "KubePodCrashLooping", ""])
def test_for_alert_unknown_or_differently_cased(
    loaded: dict[str, runbooks.Runbook], alertname: str
) -> None:
    assert runbooks.for_alert(loaded, alertname) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.22 GiB.", "gpu-oom"),
        ("RuntimeError: CUDA error: out of memory", "gpu-oom"),
        ("[Rank 1] Watchdog caught collective operation timeout: WorkNCCL(...)", "network-latency"),
        ("NCCL WARN Timeout waiting for connection", "network-latency"),
        ('{"status":504,"error":"upstream request timeout"}', "network-latency"),
        ("httpx.ConnectError: [Errno -3] Temporary failure in name resolution", "network-latency"),
        ("huggingface_hub.errors.GatedRepoError: 403 Client Error.", "model-loading-failure"),
        ("requests.exceptions.HTTPError: 401 Client Error: Unauthorized", "model-loading-failure"),
        ('Startup probe failed: Get "http://10.1.6.77:8000/health"', "model-loading-failure"),
        (
            "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            "model-loading-failure",
        ),
        (
            "creating instance, insufficient capacity, with fleet error(s)",
            "karpenter-provisioning-failure",
        ),
        (
            'all available instance types exceed limits for nodepool: "gpu"',
            "karpenter-provisioning-failure",
        ),
        (
            "kernel: NVRM: Xid (PCI:0000:20:1d): 79, pid='<unknown>', GPU has fallen off the bus.",
            "gpu-hardware-fault",
        ),
        (
            "XidCriticalError: Xid=48 on Device=GPU-7a1d; marking device as unhealthy",
            "gpu-hardware-fault",
        ),
        (
            "Sequence group 7 is preempted by PreemptionMode.RECOMPUTE mode",
            "inference-latency-high",
        ),
        (
            '{"model":"llama-3-8b","status":503,"error":"no healthy upstream"}',
            "inference-error-rate-high",
        ),
        ("Back-off restarting failed container vllm in pod x", "model-pod-restarting"),
    ],
)
def test_for_symptoms(loaded: dict[str, runbooks.Runbook], line: str, expected: str) -> None:
    runbook = runbooks.for_symptoms(loaded, [line])
    assert runbook is not None
    assert runbook.id == expected
    assert runbook.first_match(["unrelated", line]) == line


@pytest.mark.parametrize(
    "line",
    [
        "kernel: NVRM: Xid (PCI:0000:00:1e): 13, pid=28711, name=python3, Graphics SM Warp Exception",
        "kernel: NVRM: Xid (PCI:0000:00:1e): 31, pid=28711, name=python3, MMU Fault",
        "INFO: Application startup complete.",
        "0/4 nodes are available: 2 Insufficient cpu.",
    ],
)
def test_application_xids_and_healthy_lines_select_nothing(
    loaded: dict[str, runbooks.Runbook], line: str
) -> None:
    assert runbooks.for_symptoms(loaded, [line]) is None


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (  # the NCCL timeout is the consequence of the dead GPU
            ["Watchdog caught collective operation timeout", "NVRM: Xid (PCI:0000:20:1d): 79, x"],
            "gpu-hardware-fault",
        ),
        (
            ["upstream connect error or disconnect", "torch.OutOfMemoryError: CUDA out of memory"],
            "gpu-oom",
        ),
        (["CrashLoopBackOff", "GatedRepoError: 403 Client Error."], "model-loading-failure"),
    ],
)
def test_for_symptoms_prefers_the_cause_over_its_consequence(
    loaded: dict[str, runbooks.Runbook], lines: list[str], expected: str
) -> None:
    runbook = runbooks.for_symptoms(loaded, iter(lines))  # any iterable, read once
    assert runbook is not None
    assert runbook.id == expected


def test_select_uses_the_alert_name_before_symptoms(loaded: dict[str, runbooks.Runbook]) -> None:
    oom = ["torch.OutOfMemoryError: CUDA out of memory"]
    chosen = runbooks.select(loaded, alertname="ModelPodRestarting", texts=oom)
    assert chosen is not None and chosen.id == "model-pod-restarting"
    fallback = runbooks.select(loaded, alertname="SomethingElse", texts=oom)
    assert fallback is not None and fallback.id == "gpu-oom"
    assert runbooks.select(loaded) is None


# --- invalid runbooks are refused, naming the file and the key -------------------------------


def _edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


Breakage = Callable[[Path], None]

BROKEN: dict[str, tuple[Breakage, str, str, str]] = {
    # case: (how to break the copy, file named, key named, words of the reason)
    "unknown key": (
        lambda f: _edit(f, "gpu-oom.md", "title:", "owner: sre\ntitle:"),
        "gpu-oom.md",
        "owner",
        "unknown",
    ),
    "missing key": (
        lambda f: _edit(f, "cost.md", "symptoms: []\n", ""),
        "cost.md",
        "symptoms",
        "missing",
    ),
    "wrong type": (
        lambda f: _edit(f, "gpu-oom.md", "alerts: [GPUMemoryHigh]", "alerts: GPUMemoryHigh"),
        "gpu-oom.md",
        "alerts",
        "valid tuple",
    ),
    "id not a runbook id": (
        lambda f: (f / "gpu-melted.md").write_text(
            (f / "cost.md").read_text().replace("id: cost", "id: gpu-melted")
        ),
        "gpu-melted.md",
        "id",
        "not a runbook id",
    ),
    "id not the file name": (
        lambda f: _edit(f, "gpu-oom.md", "id: gpu-oom", "id: cost"),
        "gpu-oom.md",
        "id",
        "does not match the file name",
    ),
    "unknown finding code": (
        lambda f: _edit(f, "gpu-oom.md", "findings:\n", "findings:\n  gpu-oom/melted: it melted\n"),
        "gpu-oom.md",
        "findings",
        "not finding codes",
    ),
    "finding code of another runbook": (
        lambda f: _edit(
            f, "gpu-oom.md", "findings:\n", "findings:\n  cost/scale-out: more nodes\n"
        ),
        "gpu-oom.md",
        "findings",
        "not prefixed by 'gpu-oom/'",
    ),
    "finding code left out": (
        lambda f: _edit(
            f, "gpu-oom.md", "  gpu-oom/batch-too-large:", "  # gpu-oom/batch-too-large:"
        ),
        "gpu-oom.md",
        "findings",
        "not documented",
    ),
    "unknown fix code": (
        lambda f: _edit(f, "gpu-oom.md", "fixes:\n", "fixes:\n  - reboot-the-cluster\n"),
        "gpu-oom.md",
        "fixes",
        "reboot-the-cluster",
    ),
    "unknown tool": (
        lambda f: _edit(f, "cost.md", "tools:\n", "tools:\n  - ssh_into_node\n"),
        "cost.md",
        "tools",
        "ssh_into_node",
    ),
    "bad regex": (
        lambda f: _edit(f, "gpu-oom.md", "symptoms:\n", "symptoms:\n  - 'CUDA (out of memory'\n"),
        "gpu-oom.md",
        "symptoms",
        "bad regex",
    ),
    "regex matching every line": (
        lambda f: _edit(f, "gpu-oom.md", "symptoms:\n", "symptoms:\n  - 'x*'\n"),
        "gpu-oom.md",
        "symptoms",
        "empty string",
    ),
    "alert claimed twice": (
        lambda f: _edit(f, "cost.md", "GPUCostSpike]", "GPUCostSpike, GPUMemoryHigh]"),
        "cost.md",
        "alerts",
        "claimed by both",
    ),
    "runbook id without a file": (
        lambda f: (f / "cost.md").unlink(),
        "cost.md",
        "id",
        "has no file",
    ),
    "no front matter": (
        lambda f: _edit(f, "cost.md", "---\n", ""),
        "cost.md",
        "front matter",
        "between '---'",
    ),
    "front matter not YAML": (
        lambda f: _edit(f, "cost.md", "title: Daily", "title: [Daily"),
        "cost.md",
        "front matter",
        "not valid YAML",
    ),
    "empty prose": (
        lambda f: (f / "cost.md").write_text((f / "cost.md").read_text().split("# Daily cost")[0]),
        "cost.md",
        "body",
        "at least 1 character",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_an_invalid_runbook_is_refused_naming_file_and_key(tmp_path: Path, case: str) -> None:
    breakage, file_name, key, reason = BROKEN[case]
    folder = shutil.copytree(REPO_RUNBOOKS, tmp_path / "runbooks")
    breakage(folder)
    with pytest.raises(runbooks.RunbookError) as raised:
        runbooks.load(folder)
    matching = [p for p in raised.value.problems if file_name in p and f"key {key!r}" in p]
    assert matching, raised.value.problems
    assert any(reason in p for p in matching), matching


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    folder = shutil.copytree(REPO_RUNBOOKS, tmp_path / "runbooks")
    _edit(folder, "gpu-oom.md", "tools:\n", "tools:\n  - ssh_into_node\n")
    _edit(folder, "cost.md", "fixes:\n", "fixes:\n  - reboot-the-cluster\n")
    with pytest.raises(runbooks.RunbookError) as raised:
        runbooks.load(folder)
    message = str(raised.value)
    assert "gpu-oom.md: key 'tools'" in message
    assert "cost.md: key 'fixes'" in message


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(runbooks.RunbookError, match="not a folder"):
        runbooks.load(tmp_path / "nowhere")
