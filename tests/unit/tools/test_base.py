"""The tool boundary: errors become results, one deadline bounds retries, output is redacted."""

import time

import pytest

from tools import base


def test_ok_result_carries_call_data_and_duration() -> None:
    result = base.run(
        tool="t",
        source="prometheus",
        call="up",
        fetch=lambda remaining: base.Output(data=[1], text="up 1"),
        limits=base.Limits(timeout=5),
        cluster="lab",
    )
    assert (result.status, result.text, result.data, result.call) == ("ok", "up 1", [1], "up")
    assert result.cluster == "lab" and result.duration_ms >= 0 and not result.truncated


def test_no_data_is_not_ok() -> None:
    result = base.run(
        tool="t",
        source="prometheus",
        call="absent_metric",
        fetch=lambda remaining: base.Output(data=[], text="no series", no_data=True),
        limits=base.Limits(),
    )
    assert result.status == "no_data" and not result.ok


def test_errors_become_results_naming_the_backend() -> None:
    def fetch(remaining: float) -> base.Output:
        raise base.Rejected("prometheus", 'parse error: unexpected ")"')

    result = base.run(tool="t", source="prometheus", call="sum(", fetch=fetch, limits=base.Limits())
    assert result.status == "error"
    assert result.error_kind == "rejected"
    assert result.text == 'ERROR from prometheus (rejected): parse error: unexpected ")"'


def test_transient_errors_are_retried_then_succeed() -> None:
    attempts: list[float] = []

    def fetch(remaining: float) -> base.Output:
        attempts.append(remaining)
        if len(attempts) < 3:
            raise base.Unavailable("kubecost", "connection refused")
        return base.Output(data=None, text="fine")

    result = base.run(
        tool="t",
        source="kubecost",
        call="GET /model/allocation",
        fetch=fetch,
        limits=base.Limits(timeout=10),
    )
    assert result.status == "ok" and len(attempts) == 3
    assert attempts[0] > attempts[1] > attempts[2]  # each attempt gets what is left


def test_rejections_are_not_retried() -> None:
    calls = 0

    def fetch(remaining: float) -> base.Output:
        nonlocal calls
        calls += 1
        raise base.Rejected("cloudwatch", "MalformedQueryException")

    base.run(tool="t", source="cloudwatch", call="q", fetch=fetch, limits=base.Limits())
    assert calls == 1


def test_retries_stop_at_the_deadline() -> None:
    def fetch(remaining: float) -> base.Output:
        time.sleep(min(remaining, 0.4))  # a backend that fails slowly
        raise base.ServerError("prometheus", "HTTP 503")

    started = time.monotonic()
    result = base.run(
        tool="t",
        source="prometheus",
        call="up",
        fetch=fetch,
        limits=base.Limits(timeout=1.0, attempts=10),
    )
    elapsed = time.monotonic() - started
    assert result.status == "error" and result.error_kind == "server-error"
    assert elapsed < 1.0 + 0.5


def test_secrets_never_leave_in_text_data_call_or_error() -> None:
    token = "xoxb-2049871234567-5012345678901-Zq8vT3mYbN1x"

    def fetch(remaining: float) -> base.Output:
        return base.Output(
            data={"env": [{"name": "HF_TOKEN", "value": "hf_plain"}], "line": token},
            text=f"log: {token}",
        )

    result = base.run(
        tool="t",
        source="kubernetes",
        call=f"GET /x?token={token}",
        fetch=fetch,
        limits=base.Limits(),
    )
    dumped = result.model_dump_json()
    assert token not in dumped and "hf_plain" not in dumped

    def failing(remaining: float) -> base.Output:
        raise base.Rejected("kubernetes", f"Unauthorized: Bearer {token}")

    error = base.run(
        tool="t", source="kubernetes", call="GET /x", fetch=failing, limits=base.Limits()
    )
    assert token not in error.model_dump_json()


def test_output_over_budget_is_cut_and_says_so() -> None:
    big = "\n".join(f"line {i}" for i in range(10_000))
    result = base.run(
        tool="t",
        source="kubernetes",
        call="x",
        fetch=lambda remaining: base.Output(data=None, text=big),
        limits=base.Limits(output_tokens=100),
    )
    assert len(result.text) <= 400
    assert result.truncated and result.cut is not None and "omitted" in result.cut


@pytest.mark.parametrize("timeout", [0.3, 1.0])
def test_a_hanging_fetch_is_bounded_by_its_own_timeout(timeout: float) -> None:
    """The boundary hands the remaining time to the fetch; a client honouring it ends in time."""

    def fetch(remaining: float) -> base.Output:
        time.sleep(remaining)
        raise base.Timeout("aws", f"no answer within {remaining:.1f}s")

    started = time.monotonic()
    result = base.run(
        tool="t",
        source="aws",
        call="DescribeSnapshots",
        fetch=fetch,
        limits=base.Limits(timeout=timeout),
    )
    assert result.error_kind == "timeout"
    assert timeout <= time.monotonic() - started < timeout + 0.5
