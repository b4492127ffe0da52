"""Durations, relative times, series selectors and promtool's expanding notation."""

from datetime import timedelta

import pytest

from lab.scenario import notation


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert notation.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "-5m", "5min", "1.5h", "m5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        notation.parse_duration(text)


def test_relative_times() -> None:
    assert notation.parse_relative_time("-10m") == timedelta(minutes=10)
    assert notation.parse_relative_time("-0d") == timedelta(0)
    for bad in ["10m", "+10m", "-", "-ten"]:
        with pytest.raises(ValueError, match="relative time"):
            notation.parse_relative_time(bad)


def test_series_selector() -> None:
    name, labels = notation.parse_series_selector(
        'DCGM_FI_DEV_FB_USED{Hostname="gpu-a", gpu="0",pod="llama-2-7b-6f7c9-x2k4p"}'
    )
    assert name == "DCGM_FI_DEV_FB_USED"
    assert labels == {"Hostname": "gpu-a", "gpu": "0", "pod": "llama-2-7b-6f7c9-x2k4p"}
    assert notation.parse_series_selector("vllm:num_requests_waiting") == (
        "vllm:num_requests_waiting",
        {},
    )
    assert notation.parse_series_selector('m{le="+Inf",msg="say \\"hi\\""}')[1] == {
        "le": "+Inf",
        "msg": 'say "hi"',
    }


@pytest.mark.parametrize(
    "text", ["", "9metric", "m{gpu=0}", 'm{gpu="0"', 'm{a="1",a="2"}', 'm{gpu=~"0"}']
)
def test_bad_selectors(text: str) -> None:
    with pytest.raises(ValueError):
        notation.parse_series_selector(text)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1+2x3", [1, 3, 5, 7]),
        ("10-1x2", [10, 9, 8]),
        ("5x2", [5, 5, 5]),
        ("1 _ 3", [1, None, 3]),
        ("_x2 4", [None, None, 4]),
        ("0.5 1e3 -2", [0.5, 1000, -2]),
        ("1+1x1 9", [1, 2, 9]),
        (7, [7]),
        (0.25, [0.25]),
    ],
)
def test_expanding_notation(text: str | float, values: list[float | None]) -> None:
    assert notation.expand_series_values(text) == values


@pytest.mark.parametrize("text", ["", "1+x3", "1+2", "abc", "1x", "_x", "_ _", "1,2"])
def test_bad_notation(text: str) -> None:
    with pytest.raises(ValueError):
        notation.expand_series_values(text)
