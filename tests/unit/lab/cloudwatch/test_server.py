"""The CloudWatch Logs fake through the real boto3 client: the operations guide's three Insights
queries, the read operations, and the errors AWS gives."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from lab.cloudwatch import server
from lab.cloudwatch.server import CloudWatchLogs
from lab.scenario import loader

NOW = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
GROUP = "/eks/genai-platform/inference"
NODES = "/aws/containerinsights/prod-apne2/application"
LLAMA_POD = "llama-2-7b-6f7c9-x2k4p"
MISTRAL_POD = "mistral-7b-5d8f4-q7w2e"

OOM = (
    '{"log":"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",'
    f'"stream":"stderr","kubernetes":{{"pod_name":"{LLAMA_POD}","namespace_name":"inference"}}}}'
)
METRICS = (
    '{"log":"INFO 11-28 02:23:00 metrics.py:351] Avg prompt throughput: 512.3 tokens/s",'
    f'"kubernetes":{{"pod_name":"{LLAMA_POD}","namespace_name":"inference"}}}}'
)
ENGINE = (
    '{"log":"ERROR 11-28 02:18:00 engine.py:160] Engine background task failed",'
    f'"kubernetes":{{"pod_name":"{MISTRAL_POD}","namespace_name":"inference"}}}}'
)
NCCL = (
    '{"log":"RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d",'
    f'"kubernetes":{{"pod_name":"{LLAMA_POD}","namespace_name":"inference"}}}}'
)
STARTED = (
    '{"log":"INFO: Started server process [1]",'
    f'"kubernetes":{{"pod_name":"{MISTRAL_POD}","namespace_name":"inference"}}}}'
)


def request(model: str, latency: int, tokens_in: int, tokens_out: int) -> str:
    return (
        f'{{"event":"inference_request","model":"{model}","latency_ms":{latency},'
        f'"input_tokens":{tokens_in},"output_tokens":{tokens_out}}}'
    )


GATEWAY = [
    ("-5m", request("llama-2-7b", 7200, 512, 128)),
    ("-8m", request("mistral-7b", 9000, 1024, 256)),
    ("-15m", request("llama-2-7b", 6100, 256, 64)),
    ("-20m", request("codellama-13b", 4000, 128, 32)),
    ("-35m", request("llama-2-7b", 5301, 300, 100)),
    ("-50m", request("mistral-7b", 5200, 200, 50)),
    ("-65m", request("llama-2-7b", 3000, 100, 10)),
    ("-95m", request("mistral-7b", 4800, 50, 5)),
    ("-2d", request("llama-2-7b", 99999, 1, 1)),  # outside every query window below
]


def line(at: str, stream: str, message: str) -> str:
    return f"    - {{at: {at}, stream: {stream}, message: '{message}'}}\n"


SCENARIO = (
    "name: cloudwatch-lab\nlogs:\n"
    f"  {GROUP}:\n"
    + line("-3m", f"inference-{LLAMA_POD}", OOM)
    + line("-7m", f"inference-{LLAMA_POD}", METRICS)
    + line("-12m", f"inference-{MISTRAL_POD}", ENGINE)
    + line("-40m", f"inference-{LLAMA_POD}", NCCL)
    + line("-45m", f"inference-{MISTRAL_POD}", STARTED)
    + "".join(line(at, "gateway-7c9d8-h4k2m", message) for at, message in GATEWAY)
    + f"  {NODES}:\n"
    + line("-1m", "gpu-a", "NVRM: Xid 79, GPU has fallen off the bus")
)

ERRORS_QUERY = """fields @timestamp, @message, kubernetes.pod_name
| filter @message like /error|Error|ERROR/
| sort @timestamp desc
| limit 100"""

LATENCY_QUERY = """fields @timestamp, latency_ms, model, input_tokens
| filter latency_ms > 5000
| stats avg(latency_ms) as avg_latency,
        max(latency_ms) as max_latency,
        count(*) as count
  by model
| sort avg_latency desc"""

TOKENS_QUERY = """fields @timestamp, model, input_tokens, output_tokens
| stats sum(input_tokens) as total_input,
        sum(output_tokens) as total_output
  by bin(1h), model"""


def client(url: str) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=url,
        region_name="ap-northeast-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def lab() -> Iterator[CloudWatchLogs]:
    with CloudWatchLogs.from_scenario(loader.load_text(SCENARIO), now=NOW) as fake:
        yield fake


@pytest.fixture(scope="module")
def logs(lab: CloudWatchLogs) -> Any:
    return client(lab.url)


def query(logs: Any, text: str, **params: Any) -> dict[str, Any]:
    params.setdefault("logGroupName", GROUP)
    params.setdefault("startTime", NOW_S - 3 * 3600)
    params.setdefault("endTime", NOW_S)
    given = {k: v for k, v in params.items() if v is not None}  # None: leave the default out
    query_id = logs.start_query(queryString=text, **given)["queryId"]
    response: dict[str, Any] = logs.get_query_results(queryId=query_id)
    return response


def rows(response: dict[str, Any]) -> list[dict[str, str]]:
    return [{cell["field"]: cell["value"] for cell in row} for row in response["results"]]


def without_ptr(found: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "@ptr"} for row in found]


# --- the operations guide's queries ----------------------------------------------------------
def test_error_logs_with_their_pods(logs: Any) -> None:
    response = query(logs, ERRORS_QUERY)
    assert response["status"] == "Complete"
    assert without_ptr(rows(response)) == [
        {
            "@timestamp": "2026-11-28 02:27:00.000",
            "@message": OOM,
            "kubernetes.pod_name": LLAMA_POD,
        },
        {
            "@timestamp": "2026-11-28 02:18:00.000",
            "@message": ENGINE,
            "kubernetes.pod_name": MISTRAL_POD,
        },
        {
            "@timestamp": "2026-11-28 01:50:00.000",
            "@message": NCCL,
            "kubernetes.pod_name": LLAMA_POD,
        },
    ]
    first = response["results"][0]
    assert [cell["field"] for cell in first] == [
        "@timestamp",
        "@message",
        "kubernetes.pod_name",
        "@ptr",
    ]
    statistics = response["statistics"]
    assert (statistics["recordsMatched"], statistics["recordsScanned"]) == (3.0, 13.0)
    assert statistics["bytesScanned"] > 0


def test_latency_by_model(logs: Any) -> None:
    response = query(logs, LATENCY_QUERY)
    found = rows(response)
    assert [row["model"] for row in found] == ["mistral-7b", "llama-2-7b"]
    assert found[0] == {
        "model": "mistral-7b",
        "avg_latency": "7100",
        "max_latency": "9000",
        "count": "2",
    }
    llama = found[1]
    assert float(llama["avg_latency"]) == pytest.approx((7200 + 6100 + 5301) / 3)
    assert (llama["max_latency"], llama["count"]) == ("7200", "3")
    assert response["statistics"]["recordsMatched"] == 5.0


def test_token_usage_by_hour_and_model(logs: Any) -> None:
    found = rows(query(logs, TOKENS_QUERY))
    hour = "2026-11-28 {:02d}:00:00.000".format
    assert found == [
        {"bin(1h)": hour(2)},  # the pods' own log lines: no model, no tokens
        {"bin(1h)": hour(2), "model": "llama-2-7b", "total_input": "768", "total_output": "192"},
        {"bin(1h)": hour(2), "model": "mistral-7b", "total_input": "1024", "total_output": "256"},
        {"bin(1h)": hour(2), "model": "codellama-13b", "total_input": "128", "total_output": "32"},
        {"bin(1h)": hour(1), "model": "llama-2-7b", "total_input": "400", "total_output": "110"},
        {"bin(1h)": hour(1)},
        {"bin(1h)": hour(1), "model": "mistral-7b", "total_input": "200", "total_output": "50"},
        {"bin(1h)": hour(0), "model": "mistral-7b", "total_input": "50", "total_output": "5"},
    ]


# --- query parameters --------------------------------------------------------------------------
def test_the_time_range_is_inclusive_at_both_ends(logs: Any) -> None:
    text = "filter event = 'inference_request' | stats count(*) as n"
    five_minutes_ago = NOW_S - 5 * 60
    assert rows(query(logs, text, startTime=NOW_S - 8 * 60, endTime=five_minutes_ago)) == [
        {"n": "2"}
    ]
    assert rows(query(logs, text, startTime=NOW_S - 8 * 60, endTime=five_minutes_ago - 1)) == [
        {"n": "1"}
    ]


def test_several_groups_by_name_or_arn(logs: Any) -> None:
    arn = f"arn:aws:logs:ap-northeast-2:123456789012:log-group:{NODES}"
    text = "stats count(*) as n by @log | sort n desc"
    expected = [
        {"@log": f"123456789012:{GROUP}", "n": "13"},
        {"@log": f"123456789012:{NODES}", "n": "1"},
    ]
    assert rows(query(logs, text, logGroupName=None, logGroupNames=[GROUP, NODES])) == expected
    assert rows(query(logs, text, logGroupName=None, logGroupIdentifiers=[GROUP, arn])) == expected


def test_the_limit_parameter_caps_the_rows(logs: Any) -> None:
    assert len(rows(query(logs, "fields @message", limit=4))) == 4


def test_a_pointer_leads_to_the_whole_record(logs: Any) -> None:
    (row,) = rows(query(logs, "fields @message | filter @message like /Xid/", logGroupName=NODES))
    record = logs.get_log_record(logRecordPointer=row["@ptr"])["logRecord"]
    assert record["@message"] == "NVRM: Xid 79, GPU has fallen off the bus"
    assert record["@logStream"] == "gpu-a"
    assert record["@timestamp"] == str((NOW_S - 60) * 1000)


def test_queries_are_recorded(lab: CloudWatchLogs, logs: Any) -> None:
    lab.server.clear()
    query(logs, "fields @message | limit 1")
    assert lab.operations() == ["StartQuery", "GetQueryResults"]
    assert lab.query_strings()[-1] == "fields @message | limit 1"


# --- errors ------------------------------------------------------------------------------------
def test_an_unknown_log_group(logs: Any) -> None:
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        query(logs, "fields @message", logGroupName="/eks/nope")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="/eks/nope")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="/eks/nope")


def test_a_malformed_query_names_its_place(logs: Any) -> None:
    with pytest.raises(logs.exceptions.MalformedQueryException) as caught:
        query(logs, "fields @message | bogus")
    error = caught.value.response
    assert error["Error"]["Message"] == "unexpected symbol found bogus at line 1 and position 19"
    assert error["queryCompileError"]["location"] == {"startCharOffset": 18, "endCharOffset": 22}


QUERY = {"startTime": NOW_S - 60, "endTime": NOW_S, "queryString": "fields @message"}


@pytest.mark.parametrize(
    "params",
    [
        QUERY,  # no log group
        {**QUERY, "logGroupName": GROUP, "logGroupNames": [GROUP]},
        {**QUERY, "logGroupName": GROUP, "startTime": NOW_S, "endTime": NOW_S - 60},
        {**QUERY, "logGroupName": GROUP, "queryLanguage": "SQL"},
    ],
)
def test_invalid_parameters(logs: Any, params: dict[str, Any]) -> None:
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.start_query(**params)


def test_an_unknown_query_id(logs: Any) -> None:
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_query_results(queryId="00000000-0000-0000-0000-000000000000")


# --- a query still running ---------------------------------------------------------------------
def test_polling_until_complete_and_stopping() -> None:
    scenario = loader.load_text(SCENARIO)
    with CloudWatchLogs.from_scenario(scenario, now=NOW, polls_until_complete=2) as fake:
        logs = client(fake.url)
        window = {"logGroupName": GROUP, "startTime": NOW_S - 3600, "endTime": NOW_S}
        query_id = logs.start_query(queryString="stats count(*) as n", **window)["queryId"]
        statuses = [logs.get_query_results(queryId=query_id)["status"] for _ in range(3)]
        assert statuses == ["Running", "Running", "Complete"]
        assert logs.stop_query(queryId=query_id)["success"] is False

        query_id = logs.start_query(queryString="stats count(*) as n", **window)["queryId"]
        assert logs.stop_query(queryId=query_id)["success"] is True
        assert logs.get_query_results(queryId=query_id)["status"] == "Cancelled"
        assert [q["status"] for q in logs.describe_queries()["queries"]] == [
            "Cancelled",
            "Complete",
        ]


# --- groups, streams and events ----------------------------------------------------------------
def test_describe_log_groups(logs: Any) -> None:
    groups = logs.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [NODES, GROUP]
    eks = logs.describe_log_groups(logGroupNamePrefix="/eks/")["logGroups"]
    assert [g["logGroupName"] for g in eks] == [GROUP]
    assert eks[0]["arn"] == f"arn:aws:logs:ap-northeast-2:123456789012:log-group:{GROUP}:*"
    assert eks[0]["storedBytes"] > 0
    paged = logs.describe_log_groups(limit=1)
    assert len(paged["logGroups"]) == 1
    rest = logs.describe_log_groups(limit=1, nextToken=paged["nextToken"])
    assert [g["logGroupName"] for g in rest["logGroups"]] == [GROUP]
    assert "nextToken" not in rest


def test_describe_log_streams(logs: Any) -> None:
    by_name = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert [s["logStreamName"] for s in by_name] == [
        "gateway-7c9d8-h4k2m",
        f"inference-{LLAMA_POD}",
        f"inference-{MISTRAL_POD}",
    ]
    latest = logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True)
    newest = latest["logStreams"][0]
    assert newest["logStreamName"] == f"inference-{LLAMA_POD}"
    assert newest["lastEventTimestamp"] == (NOW_S - 180) * 1000


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ERROR", [ENGINE]),
        ('"CUDA out of memory"', [OOM]),
        ("?ERROR ?RuntimeError", [NCCL, ENGINE]),
        ("INFO -metrics", [STARTED]),
        ("%engine[.]py:[0-9]+%", [ENGINE]),
        ('{ $.kubernetes.pod_name = "mistral-*" }', [STARTED, ENGINE]),
        (
            '{ $.latency_ms > 7000 || $.model = "codellama-13b" }',
            [GATEWAY[i][1] for i in (8, 3, 1, 0)],
        ),
    ],
)
def test_filter_log_events_patterns(logs: Any, pattern: str, expected: list[str]) -> None:
    events = logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)["events"]
    assert [e["message"] for e in events] == expected


def test_filter_log_events_by_time_and_stream(logs: Any) -> None:
    events = logs.filter_log_events(
        logGroupName=GROUP,
        logStreamNames=["gateway-7c9d8-h4k2m"],
        startTime=(NOW_S - 20 * 60) * 1000,
        endTime=NOW_S * 1000,
        filterPattern='{ $.model = "llama-2-7b" }',
    )["events"]
    assert [e["timestamp"] for e in events] == [(NOW_S - 15 * 60) * 1000, (NOW_S - 5 * 60) * 1000]
    assert {e["logStreamName"] for e in events} == {"gateway-7c9d8-h4k2m"}


def test_filter_log_events_refuses_space_delimited_patterns(logs: Any) -> None:
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=GROUP, filterPattern="[ip, user, status=5*]")


def test_get_log_events_from_either_end(logs: Any) -> None:
    stream = {"logGroupName": GROUP, "logStreamName": "gateway-7c9d8-h4k2m", "limit": 2}
    head = logs.get_log_events(startFromHead=True, **stream)
    assert [e["message"] for e in head["events"]] == [GATEWAY[8][1], GATEWAY[7][1]]
    following = logs.get_log_events(
        startFromHead=True, nextToken=head["nextForwardToken"], **stream
    )
    assert [e["message"] for e in following["events"]] == [GATEWAY[6][1], GATEWAY[5][1]]
    tail = logs.get_log_events(**stream)
    assert [e["message"] for e in tail["events"]] == [GATEWAY[1][1], GATEWAY[0][1]]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName=GROUP, logStreamName="nope")


# --- how the bot finds it ----------------------------------------------------------------------
def test_the_endpoint_can_come_from_the_environment(
    lab: CloudWatchLogs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", lab.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    lab.server.clear()
    groups = boto3.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [NODES, GROUP]
    assert lab.operations() == ["DescribeLogGroups"]


def test_start_cloudwatch_serves_a_scenario() -> None:
    lab_server = server.start_cloudwatch(loader.load_text(SCENARIO), now=NOW)
    try:
        found = rows(query(client(lab_server.url), "stats count(*) as n", logGroupName=NODES))
        assert found == [{"n": "1"}]
        assert lab_server.calls("POST")
    finally:
        lab_server.stop()
