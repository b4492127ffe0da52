"""The lab's real Prometheus answers PromQL over the backfilled history as the scenario implies."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_api_client import PrometheusConnect

from lab.prometheus import LabPrometheus
from lab.scenario import loader

NOW = datetime.now(UTC).replace(microsecond=0)

SCENARIO = """
name: prom
metrics:
  interval: 1m
  series:
    # GPU 0 climbs from 38000 MiB by 10 a minute for two hours; GPU 1 is flat.
    'DCGM_FI_DEV_FB_USED{Hostname="gpu-a",gpu="0",UUID="GPU-0",modelName="NVIDIA A100-SXM4-40GB"}': "38000+10x120"
    'DCGM_FI_DEV_FB_USED{Hostname="gpu-a",gpu="1",UUID="GPU-1",modelName="NVIDIA A100-SXM4-40GB"}': "20000x120"
    'DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-a",gpu="0"}': "50x60 90x60"
    # 60 requests a minute, one error a minute
    'inference_request_total{model="llama-2-7b"}': "0+60x120"
    'inference_request_errors_total{model="llama-2-7b"}': "0+1x120"
    # Cumulative buckets, 60 requests a minute: 54 under 1 s, 59 under 5 s, all under 10 s.
    'inference_request_duration_seconds_bucket{model="llama-2-7b",le="1"}': "0+54x120"
    'inference_request_duration_seconds_bucket{model="llama-2-7b",le="5"}': "0+59x120"
    'inference_request_duration_seconds_bucket{model="llama-2-7b",le="10"}': "0+60x120"
    'inference_request_duration_seconds_bucket{model="llama-2-7b",le="+Inf"}': "0+60x120"
    'vllm:num_requests_waiting{model_name="llama-2-7b",namespace="inference",pod="p"}': "3 _ 5"
"""


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusConnect]:
    scenario = loader.load_text(SCENARIO)
    server = LabPrometheus(Path(tmp_path_factory.mktemp("prom"))).start(scenario.metrics, now=NOW)
    try:
        yield PrometheusConnect(url=server.url, disable_ssl=True)
    finally:
        server.stop()


def _value(prom: PrometheusConnect, query: str) -> dict[str, float]:
    result = prom.custom_query(query, params={"time": NOW.timestamp()})
    return {
        item["metric"].get("gpu", item["metric"].get("model", "")): float(item["value"][1])
        for item in result
    }


def test_backfilled_samples_count(prom: PrometheusConnect) -> None:
    # 121 samples for each 120-step series, 3 for the short one minus its gap.
    assert _value(prom, "count_over_time(DCGM_FI_DEV_FB_USED[3h])") == {"0": 121, "1": 121}


def test_last_sample_is_at_now(prom: PrometheusConnect) -> None:
    assert _value(prom, "DCGM_FI_DEV_FB_USED") == {"0": 39200, "1": 20000}
    assert _value(prom, "timestamp(DCGM_FI_DEV_FB_USED)")["0"] == NOW.timestamp()


def test_avg_over_time(prom: PrometheusConnect) -> None:
    # mean of 38000..39200 step 10 = 38600; utilisation: 61 samples at 50, then 61 at 90
    assert _value(prom, "avg_over_time(DCGM_FI_DEV_FB_USED[3h])") == {"0": 38600, "1": 20000}
    util = _value(prom, "avg_over_time(DCGM_FI_DEV_GPU_UTIL[3h])")["0"]
    assert util == pytest.approx((61 * 50 + 61 * 90) / 122)


def test_rate_and_error_ratio(prom: PrometheusConnect) -> None:
    assert _value(prom, "rate(inference_request_total[1h])")["llama-2-7b"] == pytest.approx(1.0)
    ratio = _value(
        prom,
        "sum(rate(inference_request_errors_total[1h])) by (model)"
        " / sum(rate(inference_request_total[1h])) by (model)",
    )
    assert ratio["llama-2-7b"] == pytest.approx(1 / 60)


def test_histogram_quantile(prom: PrometheusConnect) -> None:
    # p99 is the 59.4th of 60 per minute: in the (5, 10] bucket, 0.4 of the way -> 7 s.
    p99 = _value(
        prom,
        "histogram_quantile(0.99, sum(rate(inference_request_duration_seconds_bucket[1h])) by (le, model))",
    )
    assert p99["llama-2-7b"] == pytest.approx(7.0)
    p50 = _value(
        prom,
        "histogram_quantile(0.5, sum(rate(inference_request_duration_seconds_bucket[1h])) by (le, model))",
    )
    assert p50["llama-2-7b"] == pytest.approx(30 / 54)


def test_missing_samples_are_gaps(prom: PrometheusConnect) -> None:
    result = prom.custom_query(
        "count_over_time(vllm:num_requests_waiting[10m])", params={"time": NOW.timestamp()}
    )
    assert float(result[0]["value"][1]) == 2
