"""The Prometheus tools against the real lab Prometheus, and against one that misbehaves.

One Prometheus for the module: the public scenario latency-queueing-scale-up (its YAML comments
give the numbers checked here), plus a second model on vLLM's older KV-cache metric name with
latency histograms, 10,000 series to overflow the budget, and alert and recording rules.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml

from lab.httpserver import Fault, LabServer, json_response
from lab.process import free_port
from lab.prometheus import LabPrometheus
from lab.scenario import models
from tests.conftest import WaitFor
from tools import base, prom
from tools.toolbox import ClusterConfig, Toolbox

SCENARIO = Path(__file__).parents[3] / "scenarios" / "latency-queueing-scale-up.yaml"
MIXTRAL = 'model_name="mixtral-8x7b",namespace="inference"'
EXTRA = {
    # The older vLLM name for the KV cache: peak 0.95 ten minutes ago, 0.8 now.
    f'vllm:gpu_cache_usage_perc{{{MIXTRAL},pod="mixtral-a"}}': "0.5x20 0.95 0.8x9",
    f'vllm:gpu_cache_usage_perc{{{MIXTRAL},pod="mixtral-b"}}': "0.5x30",
    f'vllm:num_requests_running{{{MIXTRAL},pod="mixtral-a"}}': "100x30",
    f'vllm:num_requests_running{{{MIXTRAL},pod="mixtral-b"}}': "120x30",
    f'vllm:num_requests_waiting{{{MIXTRAL},pod="mixtral-a"}}': "5x30",
    f'vllm:num_requests_waiting{{{MIXTRAL},pod="mixtral-b"}}': "7x30",
    f'vllm:num_preemptions_total{{{MIXTRAL},pod="mixtral-a"}}': "0+30x30",  # 30 a minute
    # 100 requests a minute; e2e: 40 under 0.5 s, 80 under 1, 95 under 2, 98 under 5, all
    # under 10 -> p50 = 0.5 + 0.5 * (50-40)/(80-40) = 0.625 s, p99 = 5 + 5 * (99-98)/2 = 7.5 s.
    **{
        f'vllm:e2e_request_latency_seconds_bucket{{{MIXTRAL},pod="mixtral-a",le="{le}"}}': (
            f"0+{n}x30"
        )
        for le, n in [("0.5", 40), ("1", 80), ("2", 95), ("5", 98), ("10", 100), ("+Inf", 100)]
    },
    # TTFT: 98 under 0.5 s, all under 1 s -> p99 = 0.5 + 0.5 * (99-98)/2 = 0.75 s.
    **{
        f'vllm:time_to_first_token_seconds_bucket{{{MIXTRAL},pod="mixtral-a",le="{le}"}}': (
            f"0+{n}x30"
        )
        for le, n in [("0.1", 70), ("0.25", 90), ("0.5", 98), ("1", 100), ("+Inf", 100)]
    },
    # 10,000 series, one sample each, valued by their shard number.
    **{f'opsbot_budget_probe{{shard="{i:05d}",team="t{i % 7}"}}': str(i) for i in range(10_000)},
}
RULES = """
groups:
  - name: opsbot-test
    interval: 1s
    rules:
      - alert: InferenceLatencyHigh
        expr: histogram_quantile(0.99, sum by (model, le) (rate(inference_request_duration_seconds_bucket[5m]))) > 5
        labels: {severity: warning}
      - alert: QueueLongForAnHour
        expr: sum(vllm:num_requests_waiting) > 100
        for: 1h
        labels: {severity: info}
      - alert: BrokenJoin
        expr: vllm:num_requests_waiting + on(model_name) vllm:num_requests_running
      - record: model:vllm_waiting:sum
        expr: sum by (model_name) (vllm:num_requests_waiting)
"""


def _box(url: str, timeout: float = 10.0) -> Toolbox:
    cluster = ClusterConfig(
        name="lab", prometheus_url=url, kubecost_url="http://127.0.0.1:9", alertmanager_url=""
    )
    return Toolbox([cluster], limits=base.Limits(timeout=timeout))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabPrometheus, datetime]]:
    series = yaml.safe_load(SCENARIO.read_text())["metrics"]["series"] | EXTRA
    workdir = Path(tmp_path_factory.mktemp("prom"))
    now = datetime.now(UTC).replace(microsecond=0)
    server = LabPrometheus(workdir).start(models.Metrics(series=series), now=now)
    try:
        (workdir / "rules.yml").write_text(RULES)
        config = workdir / "prometheus.yml"
        config.write_text(config.read_text() + f"rule_files: [{workdir / 'rules.yml'}]\n")
        requests.post(f"{server.url}/-/reload", timeout=30).raise_for_status()
        yield server, now
    finally:
        server.stop()


@pytest.fixture(scope="module")
def box(lab: tuple[LabPrometheus, datetime]) -> Toolbox:
    return _box(lab[0].url)


def test_instant_query_p99_as_the_alert_sees_it(
    box: Toolbox, lab: tuple[LabPrometheus, datetime]
) -> None:
    promql = (
        "histogram_quantile(0.99, sum by (model, le) "
        "(rate(inference_request_duration_seconds_bucket[5m])))"
    )
    result = prom.query(box=box, query=promql, at=lab[1])
    assert result.status == "ok" and result.source == "prometheus"
    assert result.call == f"{promql} @ {lab[1].isoformat()}"
    [series] = result.data["series"]
    assert series["labels"] == {"model": "llama-3-8b"}
    assert series["value"] == pytest.approx(19.85, abs=0.01)  # the YAML: 19.85 s
    assert '19.85  {model="llama-3-8b"}' in result.text


def test_bad_promql_comes_back_with_prometheus_own_words(box: Toolbox) -> None:
    result = prom.query(box=box, query="sum(rate(inference_request_total[5m])")
    assert result.status == "error" and result.error_kind == "rejected"
    assert result.error is not None
    assert "HTTP 400 bad_data" in result.error
    assert "parse error: unclosed left parenthesis" in result.error
    assert result.text.startswith("ERROR from prometheus (rejected): HTTP 400 bad_data")


def test_query_range_summarises_each_series(box: Toolbox) -> None:
    result = prom.query_range(
        box=box, query='sum(vllm:num_requests_waiting{model_name="llama-3-8b"})', since="3h"
    )
    assert result.status == "ok"
    assert "[range " in result.call and "step 60s]" in result.call
    [series] = result.data["series"]
    # waiting: 0 for 136 minutes, then 83 .. 259 over the last 45 (40+2x44 and 43+2x44)
    assert (series["min"], series["max"], series["last"]) == (0, 259, 259)
    assert 170 <= series["points"] <= 181
    assert result.text.splitlines()[0].split() == ["MIN", "MEAN", "MAX", "LAST", "POINTS", "SERIES"]


def test_vllm_status_per_model_under_both_kv_cache_names(box: Toolbox) -> None:
    result = prom.vllm_status(box=box)
    assert result.status == "ok"
    llama, mixtral = result.data["models"]["llama-3-8b"], result.data["models"]["mixtral-8x7b"]
    # the scenario's last minutes: 256 running on each pod, 128 + 131 waiting, KV 0.66 / 0.65
    assert (llama["pods"], llama["running"], llama["waiting"]) == (2, 512, 259)
    assert llama["kv_cache"] == pytest.approx(0.66)
    assert llama["preemptions_per_min"] == 0  # the counters are flat: queueing, not preemption
    assert llama["e2e_p99"] is None
    assert mixtral["kv_cache"] == pytest.approx(0.8)  # from vllm:gpu_cache_usage_perc
    assert mixtral["kv_cache_peak"] == pytest.approx(0.95)
    assert (mixtral["running"], mixtral["waiting"]) == (220, 12)
    assert mixtral["preemptions_per_min"] == pytest.approx(30, rel=0.02)
    assert mixtral["e2e_p50"] == pytest.approx(0.625, rel=0.01)
    assert mixtral["e2e_p99"] == pytest.approx(7.5, rel=0.01)
    assert mixtral["ttft_p99"] == pytest.approx(0.75, rel=0.01)
    assert "vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc" in result.call
    assert result.data["absent"] == []


def test_vllm_status_names_the_absent_metrics(box: Toolbox) -> None:
    result = prom.vllm_status(box=box, model="llama-3-8b", window="5m")
    assert result.status == "ok"
    assert result.data["absent"] == [
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:time_to_first_token_seconds_bucket",
    ]
    assert "no data in Prometheus for: vllm:e2e_request_latency_seconds_bucket" in result.text
    nothing = prom.vllm_status(box=box, model="no-such-model")
    assert nothing.status == "no_data"
    assert "vllm:num_requests_running" in nothing.text


def test_gateway_stats_over_a_day(box: Toolbox) -> None:
    result = prom.gateway_stats(box=box)
    assert result.status == "ok"
    llama = result.data["models"]["llama-3-8b"]
    assert llama["p99"] == pytest.approx(11.90, rel=0.01)  # the YAML: 11.90 s over [24h]
    assert llama["requests"] == pytest.approx(1395 * 500 + 45 * 800, rel=0.01)
    assert llama["error_ratio"] == pytest.approx(
        (1395 + 45 * 2) / (1395 * 500 + 45 * 800), rel=0.01
    )
    assert result.data["all"]["error_ratio"] == pytest.approx(llama["error_ratio"])
    assert result.data["worst_p99"]["model"] == "llama-3-8b"
    assert "worst p99 11.9s (llama-3-8b)" in result.text


def test_alerts_and_rules(box: Toolbox, wait_for: WaitFor) -> None:
    result = wait_for(lambda: (r := prom.alerts(box=box)).status == "ok" and len(r.data) >= 2 and r)
    names = [(a["labels"]["alertname"], a["state"]) for a in result.data]
    assert names[0] == ("InferenceLatencyHigh", "firing")
    assert ("QueueLongForAnHour", "pending") in names
    assert result.text.splitlines()[0] == "1 firing, 1 pending"
    rules = prom.rules(box=box)
    assert rules.status == "ok" and len(rules.data) == 4
    broken = rules.data[0]  # unhealthy rules first
    assert broken["name"] == "BrokenJoin" and broken["health"] == "err"
    assert "many-to-many" in broken["last_error"] or "duplicate" in broken["last_error"]
    assert {r["type"] for r in rules.data} == {"alerting", "recording"}


def test_ten_thousand_series_fit_the_budget(box: Toolbox) -> None:
    result = prom.query(box=box, query="opsbot_budget_probe")
    assert result.status == "ok" and result.truncated
    assert len(result.text) <= box.limits.max_chars
    assert result.cut is not None and "10,000 series summarised" in result.cut
    assert result.text.startswith("10,000 series: too many to list")
    assert "shard: 10,000" in result.text and "team: 7" in result.text
    assert 'opsbot_budget_probe{shard="09999",team="t3"}' in result.text  # the top value
    assert result.data["series_count"] == 10_000 and len(result.data["series"]) == 200
    ranged = prom.query_range(box=box, query="opsbot_budget_probe", since="5m")
    assert ranged.status == "ok" and len(ranged.text) <= box.limits.max_chars
    assert ranged.cut is not None and "10,000 series summarised" in ranged.cut


def test_a_range_too_fine_is_refused_before_asking(box: Toolbox) -> None:
    result = prom.query_range(box=box, query="up", since="7d", step="15s")
    assert result.status == "error" and result.error_kind == "rejected"
    assert "over Prometheus's limit of 11,000" in result.text


def test_an_unknown_cluster_is_an_error_result(box: Toolbox) -> None:
    result = prom.query(box=box, query="up", cluster="nope")
    assert result.status == "error" and "unknown cluster 'nope'" in result.text


TOOLS = {
    "query": lambda box: prom.query(box=box, query="up"),
    "query_range": lambda box: prom.query_range(box=box, query="up", since="1h"),
    "alerts": lambda box: prom.alerts(box=box),
    "rules": lambda box: prom.rules(box=box),
    "vllm_status": lambda box: prom.vllm_status(box=box),
    "gateway_stats": lambda box: prom.gateway_stats(box=box),
}


@pytest.mark.parametrize("tool", TOOLS)
def test_prometheus_down(tool: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = TOOLS[tool](_box(url, timeout=2.0))
    assert time.monotonic() - started < 2.0 + 2.0
    assert result.status == "error" and result.error_kind == "unavailable"
    assert result.text.startswith(f"ERROR from prometheus (unavailable): cannot connect to {url}")
    assert "connection refused" in result.text


@pytest.mark.parametrize("tool", TOOLS)
def test_prometheus_slow_past_the_timeout(tool: str) -> None:
    timeout = 1.0
    with LabServer(lambda r: json_response({"status": "success"}), name="slow-prom") as slow:
        slow.fault = Fault(delay=timeout + 2)
        started = time.monotonic()
        result = TOOLS[tool](_box(slow.url, timeout=timeout))
        elapsed = time.monotonic() - started
    assert result.status == "error" and result.error_kind == "timeout"
    assert result.text.startswith("ERROR from prometheus (timeout): no answer within")
    assert timeout * 0.9 <= elapsed < timeout + 2.0


@pytest.mark.parametrize("tool", TOOLS)
def test_prometheus_answering_500(tool: str) -> None:
    body = b'{"status":"error","errorType":"internal","error":"tsdb is on fire"}'
    with LabServer(lambda r: json_response({}), name="failing-prom") as failing:
        failing.fault = Fault(status=500, body=body)
        started = time.monotonic()
        result = TOOLS[tool](_box(failing.url, timeout=3.0))
        elapsed = time.monotonic() - started
        assert len(failing.calls()) == 3  # a server error is retried, within the deadline
    assert result.status == "error" and result.error_kind == "server-error"
    assert "ERROR from prometheus (server-error): HTTP 500 internal: tsdb is on fire" in result.text
    assert elapsed < 3.0 + 2.0


@pytest.mark.parametrize(
    ("status", "body", "kind", "said"),
    [
        (
            503,
            b'{"status":"error","errorType":"timeout","error":"query timed out"}',
            "timeout",
            "gave up",
        ),
        (
            422,
            b'{"status":"error","errorType":"execution","error":"many-to-many"}',
            "rejected",
            "HTTP 422 execution: many-to-many",
        ),
        (404, b"404 page not found", "not-found", "HTTP 404: 404 page not found"),
        (200, b"<html>a proxy login page</html>", "server-error", "not JSON"),
    ],
)
def test_other_answers_map_onto_the_error_tree(
    status: int, body: bytes, kind: str, said: str
) -> None:
    with LabServer(lambda r: json_response({}), name="odd-prom") as odd:
        odd.fault = Fault(status=status, body=body)
        result = prom.query(box=_box(odd.url, timeout=3.0), query="up")
    assert result.status == "error" and result.error_kind == kind
    assert said in result.text
