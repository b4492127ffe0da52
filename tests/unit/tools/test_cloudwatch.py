"""Logs Insights through boto3 against the lab's CloudWatch Logs: the guide's queries (as
corrected) answer what the scenario's lines imply; bad queries, a dead, slow or failing
endpoint and never-ending queries come back as error results on time; big results fit the
budget; secrets in log lines never come out."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lab.cloudwatch import insights
from lab.cloudwatch.logstore import LogStore
from lab.cloudwatch.server import CloudWatchLogs
from lab.httpserver import Fault
from lab.process import free_port
from lab.scenario import loader, models
from tools import base, cloudwatch
from tools.toolbox import ClusterConfig, Toolbox

NOW = datetime.now(UTC).replace(microsecond=0)
GATEWAY = loader.load_file("scenarios/gateway-timeout-long-reasoning.yaml")
OOM = loader.load_file("scenarios/gpu-oom-kv-cache-pressure.yaml")
GROUP = "/eks/genai-platform/inference"
MARGIN = 2.0


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _box(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    *,
    groups: tuple[str, ...] = (GROUP,),
    timeout: float = 5.0,
) -> Toolbox:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", url)
    config = ClusterConfig(
        name="lab",
        prometheus_url="http://127.0.0.1:9",
        kubecost_url="http://127.0.0.1:9",
        alertmanager_url="http://127.0.0.1:9",
        log_groups=groups,
    )
    return Toolbox([config], limits=base.Limits(timeout=timeout))


@pytest.fixture
def gateway() -> Iterator[CloudWatchLogs]:
    with CloudWatchLogs.from_scenario(GATEWAY, now=NOW) as fake:
        yield fake


def _stamp(line: models.LogLine) -> datetime:
    return NOW - line.at


def _aws_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.000")


def _json(line: models.LogLine) -> dict[str, Any]:
    try:
        found = json.loads(line.message)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# -- the guide's three queries, corrected, against what the lines imply -----------------------
def test_recent_errors_are_the_error_lines_newest_first(
    gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cloudwatch.recent_errors(box=_box(monkeypatch, gateway.url), since="6h")

    pattern = re.compile(r"(?i)(error|exception|traceback|fatal|panic)")
    lines = [line for line in GATEWAY.logs[GROUP] if pattern.search(line.message)]
    expected = sorted((_aws_time(_stamp(x)), x.stream, x.message) for x in lines)
    assert result.status == "ok", result.text
    rows = result.data["rows"]
    assert sorted((r["@timestamp"], r["@logStream"], r["@message"]) for r in rows) == expected
    stamps = [r["@timestamp"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert result.call.startswith(cloudwatch.RECENT_ERRORS)
    assert f"[log groups: {GROUP}; " in result.call
    assert result.text.startswith(f"{len(lines)} rows; ")
    assert gateway.query_strings() == [cloudwatch.RECENT_ERRORS]


def test_recent_errors_catch_plain_text_engine_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with CloudWatchLogs.from_scenario(OOM, now=NOW) as fake:
        result = cloudwatch.recent_errors(box=_box(monkeypatch, fake.url), since="1h")
    messages = [r["@message"] for r in result.data["rows"]]
    assert any("torch.OutOfMemoryError: CUDA out of memory" in m for m in messages)
    assert any("EngineDeadError" in m for m in messages)
    assert len(messages) == 3  # two engine lines and the gateway's 502; the 200 is not an error


def test_token_usage_skips_lines_without_tokens_unlike_the_guide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guide = (  # the operations guide's query as printed, minus its "--" comment line
        "fields @timestamp, model, input_tokens, output_tokens\n"
        "| stats sum(input_tokens) as total_input,\n"
        "        sum(output_tokens) as total_output\n"
        "  by bin(1h), model"
    )
    with CloudWatchLogs.from_scenario(OOM, now=NOW) as fake:
        box = _box(monkeypatch, fake.url)
        as_printed = cloudwatch.insights_query(box=box, query=guide, since="1h")
        fixed = cloudwatch.token_usage_by_hour(box=box, since="1h")
        commented = cloudwatch.insights_query(box=box, query="-- Token usage\n" + guide)
    # the engine's plain-text lines made a row with an hour and nothing else
    assert {"bin(1h)"} in [set(r) for r in as_printed.data["rows"]]
    assert [(r["model"], r["input_tokens"], r["output_tokens"]) for r in fixed.data["rows"]] == [
        ("llama-3-8b", "1812", "244")
    ]
    assert commented.error_kind == "rejected" and "MalformedQueryException" in commented.text


def test_slow_requests_by_model(gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cloudwatch.slow_requests_by_model(
        box=_box(monkeypatch, gateway.url), since="6h", threshold_ms=5000
    )

    latencies: dict[str, list[int]] = defaultdict(list)
    for line in GATEWAY.logs[GROUP]:
        doc = _json(line)
        latency = doc.get("latency_ms")
        if isinstance(latency, int) and latency > 5000:
            latencies[str(doc["model"])].append(latency)
    assert result.status == "ok", result.text
    rows = result.data["rows"]
    assert [r["model"] for r in rows] == sorted(
        latencies, key=lambda m: -sum(latencies[m]) / len(latencies[m])
    )
    for row in rows:
        mine = latencies[row["model"]]
        assert int(row["requests"]) == len(mine)
        assert int(row["max_latency_ms"]) == max(mine)
        assert float(row["avg_latency_ms"]) == pytest.approx(sum(mine) / len(mine))
    assert "filter latency_ms > 5000" in result.call


def test_token_usage_by_hour(gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cloudwatch.token_usage_by_hour(box=_box(monkeypatch, gateway.url), since="24h")

    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for line in GATEWAY.logs[GROUP]:
        doc = _json(line)
        if "input_tokens" not in doc and "output_tokens" not in doc:
            continue
        hour = _stamp(line).replace(minute=0, second=0)
        entry = sums[(_aws_time(hour), str(doc["model"]))]
        entry[0] += int(doc.get("input_tokens", 0))
        entry[1] += int(doc.get("output_tokens", 0))
        entry[2] += 1
    assert result.status == "ok", result.text
    got = {
        (r["hour"], r["model"]): [
            int(r.get("input_tokens", 0)),
            int(r.get("output_tokens", 0)),
            int(r["requests"]),
        ]
        for r in result.data["rows"]
    }
    assert got == dict(sums)
    hours = [r["hour"] for r in result.data["rows"]]
    assert hours == sorted(hours, reverse=True)


# -- errors ------------------------------------------------------------------------------------
def test_a_bad_query_returns_aws_message(
    gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = "fields @timestamp | filter latency_ms >"
    with pytest.raises(insights.MalformedQueryError) as raised:
        insights.check(bad)
    result = cloudwatch.insights_query(box=_box(monkeypatch, gateway.url), query=bad)
    assert result.status == "error" and result.error_kind == "rejected"
    assert "MalformedQueryException" in result.text
    assert raised.value.message in result.text
    assert gateway.operations() == ["StartQuery"]  # refused: not retried


def test_an_unknown_log_group_is_not_found(
    gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = _box(monkeypatch, gateway.url, groups=("/no/such/group",))
    result = cloudwatch.recent_errors(box=box)
    assert result.status == "error" and result.error_kind == "not-found"
    assert "ResourceNotFoundException" in result.text


def test_without_log_groups_or_a_valid_range_nothing_is_sent(
    gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    none = cloudwatch.recent_errors(box=_box(monkeypatch, gateway.url, groups=()))
    assert none.status == "error" and "no log groups" in none.text
    bad_since = cloudwatch.insights_query(
        box=_box(monkeypatch, gateway.url), query="fields @message", since="yesterday"
    )
    assert bad_since.status == "error" and "not a duration" in bad_since.text
    unknown = cloudwatch.recent_errors(box=_box(monkeypatch, gateway.url), cluster="nope")
    assert unknown.status == "error" and "unknown cluster" in unknown.text
    assert gateway.operations() == []


def test_no_rows_is_no_data(gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cloudwatch.insights_query(
        box=_box(monkeypatch, gateway.url), query='filter model = "gpt-9"', since="6h"
    )
    assert result.status == "no_data"
    assert result.text.startswith("no rows: 0 rows; 0 of ")


def test_a_slow_query_is_polled_until_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    with CloudWatchLogs.from_scenario(GATEWAY, now=NOW, polls_until_complete=3) as fake:
        result = cloudwatch.slow_requests_by_model(box=_box(monkeypatch, fake.url), since="6h")
        assert result.status == "ok"
        assert fake.operations() == ["StartQuery"] + ["GetQueryResults"] * 4


def test_a_query_that_never_completes_is_stopped_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with CloudWatchLogs.from_scenario(GATEWAY, now=NOW, polls_until_complete=10**6) as fake:
        started = time.monotonic()
        result = cloudwatch.recent_errors(box=_box(monkeypatch, fake.url, timeout=1.5))
        elapsed = time.monotonic() - started
        assert result.status == "error" and result.error_kind == "timeout"
        assert "still Running" in result.text and "StopQuery" in result.text
        assert 1.4 <= elapsed < 1.5 + MARGIN
        assert fake.operations()[-1] == "StopQuery"
        assert [r.status for r in fake.queries.runs()] == ["Cancelled"]


def test_down_slow_and_failing(gateway: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    down = cloudwatch.recent_errors(box=_box(monkeypatch, f"http://127.0.0.1:{free_port()}"))
    assert time.monotonic() - started < 5.0 + MARGIN
    assert down.status == "error" and down.error_kind == "unavailable"
    assert down.text.startswith("ERROR from cloudwatch (unavailable): cannot reach CloudWatch Logs")

    gateway.server.fault = Fault(delay=4.0)
    started = time.monotonic()
    slow = cloudwatch.recent_errors(box=_box(monkeypatch, gateway.url, timeout=1.0))
    elapsed = time.monotonic() - started
    assert slow.status == "error" and slow.error_kind == "timeout"
    assert "no answer within" in slow.text and "CloudWatch Logs" in slow.text
    assert 0.9 <= elapsed < 1.0 + MARGIN

    gateway.server.fault = Fault(status=500)
    gateway.server.clear()
    failing = cloudwatch.recent_errors(box=_box(monkeypatch, gateway.url))
    assert failing.status == "error" and failing.error_kind == "server-error"
    assert f"CloudWatch Logs at {gateway.url} answered HTTP 500" in failing.text
    # base.run's three attempts and no more: botocore itself does not retry
    assert len(gateway.server.calls("POST")) == base.Limits().attempts


# -- budget and redaction ------------------------------------------------------------------------
def test_thousands_of_rows_fit_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        models.LogLine(
            at=timedelta(seconds=5 + i),
            stream=f"inference-llama-3-8b-{i % 7}",
            message=f'{{"event":"inference_request","model":"llama-3-8b","latency_ms":{i}}}',
        )
        for i in range(4000)
    ]
    store = LogStore.from_lines({GROUP: lines}, now=NOW)
    with CloudWatchLogs(store) as fake:
        result = cloudwatch.insights_query(
            box=_box(monkeypatch, fake.url),
            query="fields @timestamp, @logStream, latency_ms, @message | sort @timestamp desc",
            since="2h",
        )
    assert result.status == "ok"
    assert len(result.data["rows"]) == 4000
    assert len(result.text) <= base.Limits().max_chars
    assert result.truncated and result.cut is not None and "of 4,000 rows" in result.cut
    assert "more rows" in result.text


def test_secrets_in_log_lines_never_come_out(monkeypatch: pytest.MonkeyPatch) -> None:
    hf = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    key = "AKIAIOSFODNN7EXAMPLE"
    bearer = "eyJhbGciOiJIUzI1NiJ9xyz.abcdefghijklmnop"
    text = f"""
name: cw-secrets
logs:
  {GROUP}:
    - {{at: -3m, stream: inference-x, message: "ERROR download failed HF_TOKEN={hf}"}}
    - {{at: -2m, stream: inference-x, message: "ERROR s3 denied for {key}"}}
    - {{at: -1m, stream: gateway, message: 'error upstream 401 {{"authorization": "Bearer {bearer}"}}'}}
"""
    with CloudWatchLogs.from_scenario(loader.load_text(text), now=NOW) as fake:
        result = cloudwatch.recent_errors(box=_box(monkeypatch, fake.url))
    assert result.status == "ok" and len(result.data["rows"]) == 3
    dumped = result.model_dump_json()
    for secret in (hf, key, bearer):
        assert secret not in result.text
        assert secret not in dumped
    assert "[REDACTED" in result.text
