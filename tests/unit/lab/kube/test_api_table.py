"""Server-side Table output: the HTTP contract and the printers' cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from lab.kube import ages, printers, resources, table
from lab.kube.server import KubeApiServer

NS = "inference"
TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def stamp(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_table(server: KubeApiServer, path: str, **params: str) -> dict[str, object]:
    answer = requests.get(
        f"{server.url}{path}", params=params, headers={"Accept": TABLE_ACCEPT}, timeout=5
    )
    assert answer.status_code == 200
    doc: dict[str, object] = answer.json()
    assert (doc["kind"], doc["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    return doc


def test_table_rows_carry_partial_object_metadata(server: KubeApiServer) -> None:
    doc = get_table(server, f"/api/v1/namespaces/{NS}/pods", labelSelector="app=inference")
    columns = [c["name"] for c in doc["columnDefinitions"]]  # type: ignore[attr-defined]
    assert columns[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    row = doc["rows"][0]  # type: ignore[index]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == NS
    assert len(row["cells"]) == len(columns)  # wide cells are always there


@pytest.mark.parametrize(("include", "expected"), [("Object", "Pod"), ("None", None)])
def test_include_object(server: KubeApiServer, include: str, expected: str | None) -> None:
    doc = get_table(
        server, f"/api/v1/namespaces/{NS}/pods/llama-2-7b-6f7c9-x2k4p", includeObject=include
    )
    row = doc["rows"][0]  # type: ignore[index]
    assert (row.get("object") or {}).get("kind") == expected


def test_every_resource_has_a_table(server: KubeApiServer) -> None:
    for r in resources.RESOURCES:
        doc = get_table(server, r.base_path(NS))
        assert doc["columnDefinitions"], r.kind


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (59, "59s"),
        (119, "119s"),
        (200, "3m20s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
        (3000 * 86400, "8y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert ages.human_duration(seconds) == text


def test_pod_cells_follow_kubectl() -> None:
    pod = {
        "metadata": {"name": "p", "creationTimestamp": stamp(hours=2)},
        "spec": {"nodeName": "gpu-a", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
                {
                    "name": "b",
                    "ready": False,
                    "restartCount": 3,
                    "state": {"terminated": {"exitCode": 1}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": stamp(seconds=90)}},
                },
            ],
        },
    }
    cells = printers.pod_cells(pod, NOW)
    assert cells[:6] == ["p", "1/2", "ExitCode:1", "3 (90s ago)", "120m", "10.0.0.5"]
    pod["metadata"]["deletionTimestamp"] = stamp(seconds=1)  # type: ignore[index]
    assert printers.pod_cells(pod, NOW)[2] == "Terminating"


def test_init_container_status() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"initContainers": [{"name": "dl"}], "containers": [{"name": "a"}]},
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {
                    "name": "dl",
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                }
            ],
        },
    }
    assert printers.pod_cells(pod, NOW)[1:4] == ["0/1", "Init:CrashLoopBackOff", "2"]


def test_node_status_words() -> None:
    node = {"spec": {}, "status": {"conditions": []}}
    assert printers.node_status(node) == "Unknown"
    node["spec"] = {"unschedulable": True}
    node["status"] = {"conditions": [{"type": "Ready", "status": "False"}]}
    assert printers.node_status(node) == "NotReady,SchedulingDisabled"


def test_events_show_count_only_in_wide_cells() -> None:
    event = {
        "metadata": {"name": "e1"},
        "type": "Warning",
        "reason": "BackOff",
        "message": " Back-off \n",
        "count": 12,
        "firstTimestamp": stamp(hours=1),
        "lastTimestamp": stamp(minutes=1),
        "involvedObject": {"kind": "Pod", "name": "p"},
    }
    cells = printers.event_cells(event, NOW)
    assert cells[:4] == ["60s", "Warning", "BackOff", "pod/p"]
    assert cells[6:] == ["Back-off", "60m", "12", "e1"]


def test_custom_resource_columns() -> None:
    claim = resources.for_kind("NodeClaim")
    doc = table.build(
        claim,
        [
            {
                "metadata": {
                    "name": "c",
                    "creationTimestamp": stamp(days=1),
                    "labels": {"karpenter.sh/capacity-type": "spot"},
                }
            }
        ],
        resource_version="1",
        now=NOW,
    )
    assert doc["rows"][0]["cells"][:3] == ["c", None, "spot"]
    assert doc["rows"][0]["cells"][6] == "24h"
