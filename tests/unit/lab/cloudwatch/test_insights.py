"""The Logs Insights engine on its own: each command, AWS's value semantics, malformed queries."""

from datetime import UTC, datetime
from typing import Any

import pytest

from lab.cloudwatch import insights, logstore, values
from lab.scenario.models import LogLine

NOW = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
GROUP = "/eks/genai-platform/inference"


def _request(model: str, latency: int, tokens_in: int, tokens_out: int) -> str:
    return (
        f'{{"event":"inference_request","model":"{model}","latency_ms":{latency},'
        f'"input_tokens":{tokens_in},"output_tokens":{tokens_out}}}'
    )


GATEWAY = [
    ("-5m", "gateway", _request("llama-2-7b", 7200, 512, 128)),
    ("-8m", "gateway", _request("mistral-7b", 9000, 1024, 256)),
    ("-15m", "gateway", _request("llama-2-7b", 6100, 256, 64)),
    ("-35m", "gateway", _request("llama-2-7b", 3000, 300, 100)),
    ("-50m", "gateway", _request("mistral-7b", 5200, 200, 50)),
]


def events(lines: list[tuple[str, str, str]], group: str = GROUP) -> list[logstore.LogEvent]:
    logs = {
        group: [LogLine.model_validate({"at": at, "stream": s, "message": m}) for at, s, m in lines]
    }
    store = logstore.LogStore.from_lines(logs, now=NOW)
    return store.query_events([group], 0, 2**62)


def run(query: str, lines: list[tuple[str, str, str]] | None = None, **kw: Any) -> list[dict]:
    return insights.run(query, events(GATEWAY if lines is None else lines), **kw).as_dicts()


def without_ptr(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "@ptr"} for row in rows]


# --- fields, system fields and discovered JSON fields ------------------------------------------
def test_fields_show_the_named_fields_newest_first_with_aws_timestamps() -> None:
    rows = run("fields @timestamp, model, latency_ms")
    assert without_ptr(rows)[:2] == [
        {"@timestamp": "2026-11-28 02:25:00.000", "model": "llama-2-7b", "latency_ms": "7200"},
        {"@timestamp": "2026-11-28 02:22:00.000", "model": "mistral-7b", "latency_ms": "9000"},
    ]
    assert len(rows) == 5
    assert all(row["@ptr"] for row in rows)


def test_without_fields_a_row_shows_timestamp_and_message() -> None:
    rows = run("limit 1")
    assert list(rows[0]) == ["@timestamp", "@message", "@ptr"]
    assert rows[0]["@message"] == GATEWAY[0][2]


def test_system_fields() -> None:
    (row,) = run("fields @log, @logStream, @ingestionTime | limit 1")
    assert row["@log"] == f"123456789012:{GROUP}"
    assert row["@logStream"] == "gateway"
    assert row["@ingestionTime"] == "2026-11-28 02:25:00.200"


def test_nested_json_is_flattened_with_dots_and_array_indexes() -> None:
    message = (
        '{"log":"boom","kubernetes":{"pod_name":"p-1","labels":{"app":"vllm"}},'
        '"gpus":[0,3],"ok":true,"none":null}'
    )
    (row,) = run(
        "fields kubernetes.pod_name, kubernetes.labels.app, gpus.1, ok, none",
        [("-1m", "s", message)],
    )
    assert without_ptr([row]) == [
        {"kubernetes.pod_name": "p-1", "kubernetes.labels.app": "vllm", "gpus.1": "3", "ok": "1"}
    ]


def test_json_booleans_compare_as_one_and_zero() -> None:
    lines = [("-1m", "s", '{"ok":true}'), ("-2m", "s", '{"ok":false}')]
    assert len(run("filter ok = 1", lines)) == 1
    assert run('filter ok = "true"', lines) == []


def test_field_names_are_case_sensitive() -> None:
    assert run("filter Model = 'llama-2-7b'") == []
    assert len(run("filter model = 'llama-2-7b'")) == 3


def test_fields_aliases_and_functions() -> None:
    rows = run(
        "fields toupper(model) as m, latency_ms / 1000 as seconds, strlen(model), "
        "concat(model, ':', latency_ms) as tag | limit 1"
    )
    assert without_ptr(rows) == [
        {"m": "LLAMA-2-7B", "seconds": "7.2", "strlen(model)": "10", "tag": "llama-2-7b:7200"}
    ]


def test_a_field_without_a_value_is_left_out_of_the_row() -> None:
    rows = run("fields model, missing_field | limit 1")
    assert without_ptr(rows) == [{"model": "llama-2-7b"}]


def test_several_fields_commands_show_all_their_fields() -> None:
    (row,) = without_ptr(run("fields model | fields latency_ms | limit 1"))
    assert list(row) == ["model", "latency_ms"]


def test_backticks_name_a_field_with_odd_characters() -> None:
    rows = run("fields `x-request-id` as rid", [("-1m", "s", '{"x-request-id":"abc"}')])
    assert without_ptr(rows) == [{"rid": "abc"}]


def test_comments_and_line_breaks() -> None:
    query = "# latest only\nfields model  # the model\n| limit 1"
    assert without_ptr(run(query)) == [{"model": "llama-2-7b"}]


# --- filter --------------------------------------------------------------------------------------
LOG_LINES = [
    ("-1m", "a", "CUDA error: out of memory"),
    ("-2m", "a", "RuntimeError: NCCL timeout"),
    ("-3m", "b", "ERROR engine dead"),
    ("-4m", "b", "INFO all good"),
]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("@message like /error|Error|ERROR/", 3),
        ("@message like /(?i)error/", 3),
        ('@message like "error"', 1),
        ("@message not like /error/", 3),
        ("@message =~ /^INFO/", 1),
        ("@logStream = 'b' and @message like /INFO/", 1),
        ("@logStream = 'b' or @message like /CUDA/", 3),
        ("not @logStream = 'a'", 2),
        ("(@logStream = 'a' or @logStream = 'b') and @message like /good/", 1),
        ("@logStream in ['a', 'c']", 2),
        ("@logStream not in ['a']", 2),
        ("ispresent(@message) and not ispresent(nope)", 4),
    ],
)
def test_filter_conditions(condition: str, expected: int) -> None:
    assert len(run(f"filter {condition}", LOG_LINES)) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("latency_ms > 5000", 4),
        ("latency_ms >= 6100", 3),
        ("latency_ms < 5200", 1),
        ("latency_ms <= 5200", 2),
        ("latency_ms = 7200", 1),
        ("latency_ms != 7200", 4),
        ("latency_ms > 5000 and model = 'mistral-7b'", 2),
        ("latency_ms in [3000, 9000]", 2),
        ("latency_ms * 2 > 14000", 2),
        ("model > 'llama-3'", 2),
    ],
)
def test_numeric_and_string_comparisons(condition: str, expected: int) -> None:
    assert len(run(f"filter {condition}")) == expected


def test_comparisons_with_a_missing_field_are_false() -> None:
    lines = [("-1m", "s", '{"a":1}'), ("-2m", "s", '{"b":1}')]
    assert len(run("filter a != 2", lines)) == 1
    assert len(run("filter a < 2", lines)) == 1
    assert len(run("filter not a = 1", lines)) == 1


def test_numeric_strings_compare_as_numbers_with_numbers() -> None:
    lines = [("-1m", "s", "took 950 ms"), ("-2m", "s", "took 1200 ms")]
    rows = run("parse @message 'took * ms' as took | filter took > 1000 | display took", lines)
    assert without_ptr(rows) == [{"took": "1200"}]


def test_keywords_and_commands_are_case_insensitive() -> None:
    assert len(run("FILTER latency_ms > 5000 AND NOT model = 'mistral-7b' | LIMIT 10")) == 2


# --- stats ---------------------------------------------------------------------------------------
def test_stats_aggregates_with_aliases_and_default_names() -> None:
    rows = run(
        "stats count(*), count(model) as with_model, sum(input_tokens) as total, "
        "avg(latency_ms), min(latency_ms) as low, max(latency_ms) as high, "
        "pct(latency_ms, 50) as p50, pct(latency_ms, 99) as p99, count_distinct(model) as models"
    )
    assert rows == [
        {
            "count(*)": "5",
            "with_model": "5",
            "total": "2292",
            "avg(latency_ms)": "6100",
            "low": "3000",
            "high": "9000",
            "p50": "6100",
            "p99": "9000",
            "models": "2",
        }
    ]


def test_stats_by_field_and_a_non_integral_average() -> None:
    rows = run("stats avg(latency_ms) as avg, count() as n by model | sort model asc")
    assert [r["model"] for r in rows] == ["llama-2-7b", "mistral-7b"]
    assert float(rows[0]["avg"]) == pytest.approx((7200 + 6100 + 3000) / 3)
    assert rows[1] == {"model": "mistral-7b", "avg": "7100", "n": "2"}


def test_stats_by_several_keys_and_time_bins() -> None:
    rows = run("stats sum(output_tokens) as out by bin(30m), model | sort out desc")
    assert rows == [
        {"bin(30m)": "2026-11-28 02:00:00.000", "model": "mistral-7b", "out": "256"},
        {"bin(30m)": "2026-11-28 02:00:00.000", "model": "llama-2-7b", "out": "192"},
        {"bin(30m)": "2026-11-28 01:30:00.000", "model": "llama-2-7b", "out": "100"},
        {"bin(30m)": "2026-11-28 01:30:00.000", "model": "mistral-7b", "out": "50"},
    ]


def test_stats_groups_come_in_order_of_their_newest_event() -> None:
    rows = run("stats count(*) as n by bin(1h)")
    assert [r["bin(1h)"] for r in rows] == ["2026-11-28 02:00:00.000", "2026-11-28 01:00:00.000"]


def test_stats_by_alias_arithmetic_and_a_second_stats() -> None:
    rows = run(
        "stats sum(output_tokens) / sum(input_tokens) * 100 as ratio by model as m "
        "| stats min(ratio) as lowest, count(*) as models"
    )
    assert rows == [{"lowest": "25", "models": "2"}]


def test_events_without_the_by_field_form_their_own_group() -> None:
    lines = [*GATEWAY[:2], ("-1m", "pod", '{"log":"hello"}')]
    rows = run("stats count(*) as n by model", lines)
    assert {"n": "1"} in rows


def test_stats_over_nothing_returns_no_rows() -> None:
    assert run("filter latency_ms > 100000 | stats count(*)") == []


def test_earliest_latest_and_time_extremes() -> None:
    (row,) = run("stats earliest(model) as first, latest(model) as last, min(@timestamp) as since")
    assert row == {"first": "mistral-7b", "last": "llama-2-7b", "since": "2026-11-28 01:40:00.000"}


def test_datefloor_and_bin_by_day() -> None:
    (row,) = run("fields datefloor(@timestamp, 1d) as day, bin(15m) as q | limit 1")
    assert (row["day"], row["q"]) == ("2026-11-28 00:00:00.000", "2026-11-28 02:15:00.000")


# --- sort, limit, display, dedup -----------------------------------------------------------------
def test_sort_directions_and_default() -> None:
    asc = [r["latency_ms"] for r in run("fields latency_ms | sort latency_ms asc")]
    desc = [r["latency_ms"] for r in run("fields latency_ms | sort latency_ms")]
    assert asc == ["3000", "5200", "6100", "7200", "9000"]
    assert desc == list(reversed(asc))


def test_sort_by_timestamp_and_by_two_keys() -> None:
    oldest = run("fields model | sort @timestamp asc | limit 1")
    assert oldest[0]["model"] == "mistral-7b"
    rows = run("fields model, latency_ms | sort model asc, latency_ms desc")
    assert [r["latency_ms"] for r in rows] == ["7200", "6100", "3000", "9000", "5200"]


def test_natural_sort_order_of_the_aws_documentation() -> None:
    documented = ["!:", "#", "*%04", "0#", "5A", "111A", "2345_", "@", "@_", "A", "A9876fghj"]
    documented += ["a12345hfh", "0", "1", "2", "3"]
    shuffled = sorted(documented, key=hash)
    assert sorted(shuffled, key=values.sort_key) == documented


def test_missing_values_sort_last() -> None:
    lines = [("-1m", "s", '{"a":2}'), ("-2m", "s", "plain"), ("-3m", "s", '{"a":1}')]
    for direction in ("asc", "desc"):
        rows = run(f"fields a | sort a {direction}", lines)
        assert "a" not in rows[-1]


def test_limit_command_and_limit_parameter() -> None:
    assert len(run("fields model | limit 2")) == 2
    assert len(run("fields model", limit=3)) == 3
    assert len(run("fields model | limit 4", limit=2)) == 2


def test_default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(insights, "DEFAULT_LIMIT", 2)
    assert len(run("fields model")) == 2
    assert len(run("fields model | limit 4")) == 4


def test_display_chooses_the_columns_and_the_last_one_wins() -> None:
    rows = run("fields model, latency_ms | display latency_ms | display model | limit 1")
    assert list(rows[0]) == ["model", "@ptr"]


def test_dedup_keeps_the_first_row_of_each_value() -> None:
    rows = run("fields model | dedup model")
    assert [r["model"] for r in rows] == ["llama-2-7b", "mistral-7b"]


# --- parse ---------------------------------------------------------------------------------------
ACCESS = [
    ("-1m", "s", '10.0.0.1 - "POST /v1/completions" 200 1830ms'),
    ("-2m", "s", '10.0.0.2 - "GET /health" 503 12ms'),
    ("-3m", "s", "not an access line"),
]


def test_parse_glob_fills_fields_per_star() -> None:
    rows = run("parse @message '* - \"* *\" * *ms' as ip, method, path, status, ms", ACCESS)
    assert without_ptr(rows)[0] == {
        "@timestamp": "2026-11-28 02:29:00.000",
        "@message": ACCESS[0][2],
        "ip": "10.0.0.1",
        "method": "POST",
        "path": "/v1/completions",
        "status": "200",
        "ms": "1830",
    }
    assert set(rows[2]) == {"@timestamp", "@message", "@ptr"}


def test_parse_regex_with_named_groups_and_stats_on_parsed_numbers() -> None:
    query = 'parse @message /"(?<method>[A-Z]+) \\S+" (?<status>\\d{3}) (?<ms>\\d+)ms/'
    rows = run(f"{query} | filter status >= 500 | display method, ms", ACCESS)
    assert without_ptr(rows) == [{"method": "GET", "ms": "12"}]
    (row,) = run(f"{query} | stats avg(ms) as avg_ms, count(status) as n", ACCESS)
    assert row == {"avg_ms": "921", "n": "2"}


def test_parse_regex_with_as_names_its_groups() -> None:
    rows = run(r"parse @message /(\d+)ms$/ as ms | filter ispresent(ms) | display ms", ACCESS)
    assert [r["ms"] for r in rows] == ["1830", "12"]


def test_parse_a_json_field() -> None:
    rows = run(
        "parse log 'user=* ' as user | display user", [("-1m", "s", '{"log":"user=bob ok"}')]
    )
    assert without_ptr(rows) == [{"user": "bob"}]


# --- statistics ----------------------------------------------------------------------------------
def test_statistics_count_scanned_and_matched_records() -> None:
    result = insights.run("filter model = 'mistral-7b' | stats count(*)", events(GATEWAY))
    stats = result.statistics
    assert (stats.records_scanned, stats.records_matched, stats.log_groups_scanned) == (5, 2, 1)
    assert stats.bytes_scanned == sum(len(m.encode()) for _, _, m in GATEWAY)


# --- malformed queries ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "",
        "   # only a comment",
        "frobnicate @message",
        "fields @message |",
        "fields @message | | limit 1",
        "fields nosuchfn(@message)",
        "stats model by bin(1h)",
        "filter count(*) > 1",
        "stats count(*) by",
        "filter (latency_ms > 1",
        "filter @message like /unclosed(/",
        "filter @message like 'unterminated",
        "filter @message like 5",
        "limit 0",
        "limit many",
        "parse @message '* *' as only_one",
        "parse @message 'no stars'",
        "parse @message /(\\d+)/",
        "stats count(*) by bin(5x)",
        "stats count(*) by bin(model)",
        "stats pct(latency_ms, 200)",
        "sort",
        "sort desc",
        "display",
        "fields and",
        "filter a = ",
        "filter a not b",
    ],
)
def test_malformed_queries_are_refused(query: str) -> None:
    with pytest.raises(insights.MalformedQueryError):
        insights.check(query)


def test_a_malformed_query_names_line_and_position() -> None:
    query = "fields @timestamp\n| filter x ==> 1"
    with pytest.raises(insights.MalformedQueryError) as caught:
        insights.check(query)
    assert caught.value.message == "unexpected symbol found = at line 2 and position 13"
    assert query[caught.value.start] == "="
