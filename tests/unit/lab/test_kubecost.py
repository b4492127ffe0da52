"""The Kubecost fake over real HTTP: window semantics, aggregation, accumulation and step.

"Now" is Wednesday 2024-05-15 06:00 UTC, so a ``day: -0d`` row covers 05-14 06:00 → 05-15
06:00 and midnight alignment moves a quarter of it in or out of a window. Shares are chosen
as quarters so every expected number is exact in binary floating point.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from lab import kubecost
from lab.httpserver import LabServer
from lab.scenario import loader

NOW = datetime(2024, 5, 15, 6, 0, tzinfo=UTC)
SCENARIO = """
name: costs
cluster:
  name: prod-apne2
  workloads:
    - name: llama-2-7b
      replicas: 2
      containers:
        - {name: vllm, image: vllm/vllm-openai:v0.11.0, resources: {limits: {nvidia.com/gpu: 1}}}
costs:
  allocations:
    - {namespace: inference, controller: llama-2-7b, day: -0d, gpuCost: 960, cpuCost: 48, ramCost: 24, pvCost: 4, networkCost: 8}
    - {namespace: inference, controller: llama-2-7b, day: -1d, gpuCost: 480}
    - {namespace: inference, controller: llama-2-7b, day: -6d, gpuCost: 400}
    - {namespace: inference, controller: llama-2-7b, day: -7d, gpuCost: 2400}
    - {namespace: inference, controller: gateway, day: -0d, cpuCost: 96}
    - {namespace: monitoring, day: -0d, cpuCost: 24, ramCost: 24}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LabServer]:
    with kubecost.start_kubecost(loader.load_text(SCENARIO), now=NOW) as srv:
        yield srv


def _get(server: LabServer, **params: str) -> requests.Response:
    return requests.get(f"{server.url}/model/allocation", params=params, timeout=10)


def _data(server: LabServer, **params: str) -> list[dict[str, Any]]:
    response = _get(server, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 200
    assert body["status"] == "success"
    data: list[dict[str, Any]] = body["data"]
    return data


def _totals(allocation_set: dict[str, Any]) -> dict[str, float]:
    return {name: a["totalCost"] for name, a in allocation_set.items()}


def test_1d_is_today_since_utc_midnight(server: LabServer) -> None:
    [today] = _data(server, window="1d", aggregate="namespace", accumulate="true")
    # Only 06:00 of the -0d rows fall after midnight: a quarter of each.
    assert _totals(today) == {"inference": (1044 + 96) / 4, "monitoring": 48 / 4}
    inference = today["inference"]
    assert inference["window"] == {"start": "2024-05-15T00:00:00Z", "end": "2024-05-16T00:00:00Z"}
    assert (inference["start"], inference["end"]) == (
        "2024-05-15T00:00:00Z",
        "2024-05-15T06:00:00Z",
    )
    assert inference["minutes"] == 360
    assert inference["gpuCost"] == 240
    assert inference["cpuCost"] == (48 + 96) / 4
    assert inference["ramCost"] == 6
    assert inference["pvCost"] == 1
    assert inference["networkCost"] == 2
    assert inference["gpuHours"] == 12  # two GPUs for six hours
    # Aggregated properties are those every member shares (both controllers are Deployments).
    assert inference["properties"] == {
        "cluster": "prod-apne2",
        "namespace": "inference",
        "controllerKind": "deployment",
    }
    assert today["monitoring"]["properties"] == {"cluster": "prod-apne2", "namespace": "monitoring"}


def test_24h_is_exact(server: LabServer) -> None:
    [last_day] = _data(server, window="24h", aggregate="namespace", accumulate="true")
    assert _totals(last_day) == {"inference": 1044 + 96, "monitoring": 48}
    assert last_day["inference"]["window"] == {
        "start": "2024-05-14T06:00:00Z",
        "end": "2024-05-15T06:00:00Z",
    }


def test_7d_is_seven_whole_utc_days_one_set_per_day(server: LabServer) -> None:
    sets = _data(server, window="7d", aggregate="controller")
    assert len(sets) == 7
    assert sets[0]["deployment:llama-2-7b"]["window"] == {
        "start": "2024-05-09T00:00:00Z",
        "end": "2024-05-10T00:00:00Z",
    }
    assert sets[1:4] == [{}, {}, {}]  # no row reaches 05-10 .. 05-12
    llama = [s.get("deployment:llama-2-7b", {}).get("gpuCost", 0.0) for s in sets]
    # -6d covers 05-08 06:00 → 05-09 06:00: a quarter in the 7d window; -7d lies before it.
    # 05-14 gets 18 h of -0d and 6 h of -1d; 05-13 the other 18 h of -1d.
    assert llama == [100, 0, 0, 0, 360, 720 + 120, 240]


def test_7d_accumulated_sums_the_overlapping_shares(server: LabServer) -> None:
    [week] = _data(server, window="7d", aggregate="namespace", accumulate="true")
    assert week["inference"]["gpuCost"] == 100 + 480 + 960
    assert week["inference"]["window"] == {
        "start": "2024-05-09T00:00:00Z",
        "end": "2024-05-16T00:00:00Z",
    }


@pytest.mark.parametrize(
    "window",
    ["2024-05-14T12:00:00Z,2024-05-14T18:00:00Z", "1715688000,1715709600"],
    ids=["rfc3339", "unix"],
)
def test_start_end_windows_are_exact(server: LabServer, window: str) -> None:
    [piece] = _data(server, window=window, aggregate="namespace", accumulate="true")
    assert _totals(piece) == {"inference": (1044 + 96) / 4, "monitoring": 12}
    assert piece["inference"]["window"] == {
        "start": "2024-05-14T12:00:00Z",
        "end": "2024-05-14T18:00:00Z",
    }


def test_the_last_24h_as_start_end_is_the_minus_0d_rows(server: LabServer) -> None:
    window = "2024-05-14T06:00:00Z,2024-05-15T06:00:00Z"
    [piece] = _data(server, window=window, aggregate="cluster", accumulate="true")
    assert _totals(piece) == {"prod-apne2": 1044 + 96 + 48}


def test_aggregate_controller_names_kind_and_name(server: LabServer) -> None:
    [piece] = _data(server, window="24h", aggregate="controller", accumulate="true")
    assert _totals(piece) == {
        "deployment:llama-2-7b": 1044,
        "deployment:gateway": 96,
        "__unallocated__": 48,
    }
    assert piece["deployment:llama-2-7b"]["properties"] == {
        "cluster": "prod-apne2",
        "namespace": "inference",
        "controller": "llama-2-7b",
        "controllerKind": "deployment",
    }


def test_multi_aggregation_joins_names_with_slashes(server: LabServer) -> None:
    [piece] = _data(server, window="24h", aggregate="namespace,controller", accumulate="true")
    assert set(piece) == {
        "inference/deployment:llama-2-7b",
        "inference/deployment:gateway",
        "monitoring/__unallocated__",
    }


def test_unaggregated_rows_are_named_by_cluster_namespace_controller(server: LabServer) -> None:
    [piece] = _data(server, window="24h", accumulate="true")
    assert set(piece) == {
        "prod-apne2/inference/llama-2-7b",
        "prod-apne2/inference/gateway",
        "prod-apne2/monitoring/__unallocated__",
    }


def test_step_splits_an_exact_window(server: LabServer) -> None:
    window = "2024-05-14T00:00:00Z,2024-05-15T00:00:00Z"
    sets = _data(server, window=window, aggregate="namespace", accumulate="false", step="6h")
    assert [s["inference"]["window"]["start"][11:16] for s in sets] == [
        "00:00",
        "06:00",
        "12:00",
        "18:00",
    ]
    # 00:00-06:00 is the tail of -1d; the rest is a quarter of -0d each.
    assert [s["inference"]["gpuCost"] for s in sets] == [120, 240, 240, 240]
    assert [s.get("monitoring", {}).get("totalCost", 0.0) for s in sets] == [0, 12, 12, 12]


def test_default_step_cuts_at_utc_midnight(server: LabServer) -> None:
    window = "2024-05-14T06:00:00Z,2024-05-15T06:00:00Z"
    sets = _data(server, window=window, aggregate="cluster")
    assert [s["prod-apne2"]["window"] for s in sets] == [
        {"start": "2024-05-14T06:00:00Z", "end": "2024-05-15T00:00:00Z"},
        {"start": "2024-05-15T00:00:00Z", "end": "2024-05-15T06:00:00Z"},
    ]
    assert [s["prod-apne2"]["totalCost"] for s in sets] == [1188 * 3 / 4, 1188 / 4]


def test_sets_after_now_are_left_out(server: LabServer) -> None:
    sets = _data(server, window="today", aggregate="cluster", step="1h")
    assert len(sets) == 6
    assert sum(s["prod-apne2"]["totalCost"] for s in sets) == 1188 / 4


@pytest.mark.parametrize(
    "window", ["last-week", "2024-05-14T00:00:00+00:00,2024-05-15T00:00:00+00:00", "", "7x"]
)
def test_a_bad_window_is_a_400_with_kubecost_wording(server: LabServer, window: str) -> None:
    response = _get(server, window=window)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert body["message"] == f"Invalid 'window' parameter: illegal window: {window}"


def test_a_bad_aggregate_is_a_400(server: LabServer) -> None:
    response = _get(server, window="1d", aggregate="flavour")
    assert response.status_code == 400
    assert "aggregate" in response.json()["message"]


def test_requests_are_recorded(server: LabServer) -> None:
    server.clear()
    _data(server, window="1d", aggregate="namespace")
    [call] = server.calls("GET", r"^/model/allocation$")
    assert call.arg("aggregate") == "namespace"


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ("today", "2024-05-15T00:00:00", "2024-05-16T00:00:00"),
        ("yesterday", "2024-05-14T00:00:00", "2024-05-15T00:00:00"),
        ("week", "2024-05-12T00:00:00", "2024-05-15T06:00:00"),
        ("lastweek", "2024-05-05T00:00:00", "2024-05-12T00:00:00"),
        ("month", "2024-05-01T00:00:00", "2024-05-15T06:00:00"),
        ("lastmonth", "2024-04-01T00:00:00", "2024-05-01T00:00:00"),
        ("2d", "2024-05-14T00:00:00", "2024-05-16T00:00:00"),
        ("1w", "2024-05-09T00:00:00", "2024-05-16T00:00:00"),
        ("3h", "2024-05-15T03:00:00", "2024-05-15T06:00:00"),
        ("30m", "2024-05-15T05:30:00", "2024-05-15T06:00:00"),
        ("1d offset 1d", "2024-05-13T06:00:00", "2024-05-14T06:00:00"),
    ],
)
def test_window_keywords_and_durations(window: str, start: str, end: str) -> None:
    parsed = kubecost.parse_window(window, NOW)
    assert (parsed.start, parsed.end) == (
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
    )
