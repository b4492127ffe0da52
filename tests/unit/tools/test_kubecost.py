"""Kubecost's Allocation API against the lab: the last 24 h as an exact window, totals and
day-over-day change exactly as the scenario's allocations imply; Kubecost's own errors; a dead,
slow or failing Kubecost on time; huge answers within budget."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from lab.httpserver import Fault, LabServer, json_response
from lab.kubecost import start_kubecost
from lab.process import free_port
from lab.scenario import loader, models
from tools import base, kubecost
from tools.toolbox import ClusterConfig, Toolbox

NOW = datetime(2025, 10, 14, 6, 0, 0, tzinfo=UTC)
"""06:00 UTC: a quarter of the day gone, so Kubecost's midnight-aligned 1d differs from 24 h."""
IDLE_GPUS = loader.load_file("scenarios/daily-cost-idle-gpus.yaml")
HEALTHY = loader.load_file("scenarios/daily-checks-healthy.yaml")
FIELDS = ("gpuCost", "cpuCost", "ramCost", "pvCost", "networkCost")
MARGIN = 2.0
CHANGED = """
name: kubecost-changed
costs:
  allocations:
    - {namespace: inference, day: -1d, gpuCost: 400, cpuCost: 20}
    - {namespace: inference, day: -0d, gpuCost: 900, cpuCost: 30}
    - {namespace: batch, day: -1d, gpuCost: 120}
    - {namespace: research, day: -0d, gpuCost: 50, ramCost: 5}
    - {namespace: monitoring, day: -1d, cpuCost: 10}
    - {namespace: monitoring, day: -0d, cpuCost: 10}
"""


def _day(scenario: models.Scenario, day: int) -> dict[str, Fraction]:
    """Each namespace's total for ``day: -<day>d``, exactly."""
    totals: dict[str, Fraction] = defaultdict(Fraction)
    assert scenario.costs is not None
    for row in scenario.costs.allocations:
        if row.day == timedelta(days=day):
            totals[row.namespace] += sum(Fraction(getattr(row, f)) for f in FIELDS)
    return dict(totals)


@pytest.fixture
def boxes() -> Iterator[Callable[..., Toolbox]]:
    """Makes Toolboxes for a Kubecost URL and closes the HTTP sessions they opened."""
    made: list[Toolbox] = []

    def make(url: str, *, timeout: float = 5.0, path: str = "/model/allocation") -> Toolbox:
        config = ClusterConfig(
            name="lab",
            prometheus_url="http://127.0.0.1:9",
            kubecost_url=url,
            alertmanager_url="http://127.0.0.1:9",
            kubecost_path=path,
        )
        box = Toolbox([config], limits=base.Limits(timeout=timeout))
        made.append(box)
        return box

    yield make
    for box in made:
        kubecost.session(box, box.cluster()).close()


@pytest.fixture
def idle_gpus() -> Iterator[LabServer]:
    server = start_kubecost(IDLE_GPUS, now=NOW)
    yield server
    server.stop()


def test_last_24h_window_is_exact_unix_seconds() -> None:
    end = int(NOW.timestamp())
    assert kubecost.last_24h_window(NOW) == f"{end - 86400},{end}"


def test_daily_cost_is_the_24h_ending_now(
    idle_gpus: LabServer, boxes: Callable[..., Toolbox]
) -> None:
    result = kubecost.daily_cost(box=boxes(idle_gpus.url), now=NOW)

    expected = _day(IDLE_GPUS, 0)
    assert result.status == "ok", result.text
    assert result.data["total"] == pytest.approx(float(sum(expected.values())), abs=1e-9)
    assert result.data["total"] == pytest.approx(1659.9)  # the alert's "$1659.9"
    assert result.data["by_namespace"] == pytest.approx({k: float(v) for k, v in expected.items()})
    window = kubecost.last_24h_window(NOW)
    assert [r.arg("window") for r in idle_gpus.calls("GET")] == [window]
    assert result.call == (
        f"GET {idle_gpus.url}/model/allocation?window={window.replace(',', '%2C')}"
        "&aggregate=namespace&accumulate=true"
    )
    assert "1,659.90" in result.text.splitlines()[0]
    assert result.text.splitlines()[2].startswith("inference")  # most expensive first


def test_24h_is_sent_exact_and_1d_is_midnight_aligned(
    idle_gpus: LabServer, boxes: Callable[..., Toolbox]
) -> None:
    box = boxes(idle_gpus.url)
    last_24h = kubecost.allocation(box=box, window="24h", now=NOW)
    today = kubecost.allocation(box=box, window="1d", now=NOW)

    total = float(sum(_day(IDLE_GPUS, 0).values()))
    assert sum(r["totalCost"] for r in last_24h.data["sets"][0]) == pytest.approx(total)
    assert last_24h.data["window"] == kubecost.last_24h_window(NOW)
    # 1d is [today 00:00 UTC, now): a quarter of the 24 h row at 06:00
    assert sum(r["totalCost"] for r in today.data["sets"][0]) == pytest.approx(total / 4)
    assert "aligns day and week windows to 00:00 UTC" in today.text


def test_controller_aggregation_and_daily_steps(
    idle_gpus: LabServer, boxes: Callable[..., Toolbox]
) -> None:
    box = boxes(idle_gpus.url)
    by_controller = kubecost.allocation(
        box=box, window=kubecost.last_24h_window(NOW), aggregate="controller"
    )
    names = [r["name"] for r in by_controller.data["sets"][0]]
    assert names[0] == "deployment:llama-3-70b"
    assert by_controller.data["sets"][0][0]["gpuCost"] == pytest.approx(1404.0)

    start = NOW - timedelta(days=2)
    steps = kubecost.allocation(
        box=box, window=f"{int(start.timestamp())},{int(NOW.timestamp())}", accumulate=False
    )
    assert len(steps.data["sets"]) >= 2  # one set per UTC day the window touches
    assert sum(r["totalCost"] for s in steps.data["sets"] for r in s) == pytest.approx(
        float(sum(_day(IDLE_GPUS, 0).values()) + sum(_day(IDLE_GPUS, 1).values()))
    )


def test_gpu_share(idle_gpus: LabServer, boxes: Callable[..., Toolbox]) -> None:
    result = kubecost.gpu_share(box=boxes(idle_gpus.url), now=NOW)

    assert IDLE_GPUS.costs is not None
    today = [r for r in IDLE_GPUS.costs.allocations if r.day == timedelta(0)]
    gpu = sum(Fraction(r.gpuCost) for r in today)
    total = sum(Fraction(getattr(r, f)) for r in today for f in FIELDS)
    assert result.data["gpu_cost"] == pytest.approx(float(gpu))
    assert result.data["share"] == pytest.approx(float(gpu / total))
    assert result.data["by"][0]["name"] == "inference"
    assert result.data["by"][0]["share_of_gpu_cost"] == pytest.approx(1.0)
    assert f"({float(gpu / total):.1%})" in result.text


def test_day_over_day_on_a_steady_cluster(boxes: Callable[..., Toolbox]) -> None:
    server = start_kubecost(HEALTHY, now=NOW)
    try:
        result = kubecost.day_over_day(box=boxes(server.url), now=NOW)
    finally:
        server.stop()

    now_day, before = _day(HEALTHY, 0), _day(HEALTHY, 1)
    assert result.status == "ok", result.text
    assert result.data["current_total"] == pytest.approx(float(sum(now_day.values())))
    assert result.data["previous_total"] == pytest.approx(float(sum(before.values())))
    changes = {c["name"]: c["change"] for c in result.data["by"]}
    assert changes == pytest.approx({n: float(now_day[n] - before[n]) for n in now_day})
    end = int(NOW.timestamp())
    assert result.call.splitlines() == [
        f"GET {server.url}/model/allocation?window={end - 86400}%2C{end}"
        "&aggregate=namespace&accumulate=true",
        f"GET {server.url}/model/allocation?window={end - 2 * 86400}%2C{end - 86400}"
        "&aggregate=namespace&accumulate=true",
    ]


def test_day_over_day_with_new_and_gone_namespaces(boxes: Callable[..., Toolbox]) -> None:
    server = start_kubecost(loader.load_text(CHANGED), now=NOW)
    try:
        result = kubecost.day_over_day(box=boxes(server.url), now=NOW)
    finally:
        server.stop()

    by = {c["name"]: c for c in result.data["by"]}
    assert [c["name"] for c in result.data["by"]] == [
        "inference",
        "batch",
        "research",
        "monitoring",
    ]
    assert by["inference"]["change"] == pytest.approx(510.0)
    assert by["inference"]["change_pct"] == pytest.approx(510 / 420 * 100)
    assert by["batch"]["current"] == 0 and by["batch"]["change_pct"] == pytest.approx(-100.0)
    assert by["research"]["previous"] == 0 and by["research"]["change_pct"] is None
    assert result.data["change"] == pytest.approx(995 - 550)
    assert "new" in result.text


def test_opencost_path_and_a_wrong_path(boxes: Callable[..., Toolbox]) -> None:
    server = start_kubecost(IDLE_GPUS, now=NOW)
    try:
        opencost = kubecost.daily_cost(box=boxes(server.url, path="/allocation"), now=NOW)
        wrong = kubecost.daily_cost(box=boxes(server.url, path="/model/allocations"), now=NOW)
    finally:
        server.stop()
    assert opencost.status == "ok" and opencost.data["total"] == pytest.approx(1659.9)
    assert wrong.status == "error" and wrong.error_kind == "rejected"
    assert "HTTP 404" in wrong.text and "kubecost_path" in wrong.text


def test_kubecost_refusal_carries_its_message(
    idle_gpus: LabServer, boxes: Callable[..., Toolbox]
) -> None:
    result = kubecost.allocation(box=boxes(idle_gpus.url), window="fortnight")
    assert result.status == "error" and result.error_kind == "rejected"
    assert "HTTP 400: Invalid 'window' parameter: illegal window: fortnight" in result.text
    assert len(idle_gpus.calls("GET")) == 1


def test_no_allocations_is_no_data(boxes: Callable[..., Toolbox]) -> None:
    server = start_kubecost(loader.load_text("name: kubecost-empty"), now=NOW)
    try:
        result = kubecost.daily_cost(box=boxes(server.url), now=NOW)
    finally:
        server.stop()
    assert result.status == "no_data" and "no allocations" in result.text


def test_down_slow_and_failing(idle_gpus: LabServer, boxes: Callable[..., Toolbox]) -> None:
    down = kubecost.daily_cost(box=boxes(f"http://127.0.0.1:{free_port()}"), now=NOW)
    assert down.status == "error" and down.error_kind == "unavailable"
    assert down.text.startswith("ERROR from kubecost (unavailable): cannot connect")

    idle_gpus.fault = Fault(delay=4.0)
    started = time.monotonic()
    slow = kubecost.daily_cost(box=boxes(idle_gpus.url, timeout=1.0), now=NOW)
    elapsed = time.monotonic() - started
    assert slow.status == "error" and slow.error_kind == "timeout"
    assert "no answer within" in slow.text
    assert 0.9 <= elapsed < 1.0 + MARGIN

    idle_gpus.fault = Fault(status=500, body=b'{"code": 500, "message": "ETL not ready"}')
    failing = kubecost.day_over_day(box=boxes(idle_gpus.url), now=NOW)
    assert failing.status == "error" and failing.error_kind == "server-error"
    assert "HTTP 500: ETL not ready" in failing.text


def test_thousands_of_namespaces_fit_the_budget(boxes: Callable[..., Toolbox]) -> None:
    window = {"start": "2025-10-13T06:00:00Z", "end": "2025-10-14T06:00:00Z"}
    allocations = {
        f"team-{i:04d}": {
            "name": f"team-{i:04d}",
            "gpuCost": i,
            "totalCost": i + 1,
            "window": window,
        }
        for i in range(3000)
    }
    with LabServer(
        lambda r: json_response({"code": 200, "data": [allocations]}), name="big-kubecost"
    ) as server:
        result = kubecost.daily_cost(box=boxes(server.url), now=NOW)
    assert result.status == "ok"
    assert len(result.text) <= base.Limits().max_chars
    assert result.truncated and "of 3,000 namespaces" in (result.cut or "")
    assert result.text.splitlines()[2].startswith("team-2999")  # the most expensive kept
    assert result.data["total"] == pytest.approx(sum(range(1, 3001)))
