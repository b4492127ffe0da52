"""Fixtures every test tier shares."""

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
WaitFor = Callable[..., Any]


def _wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


@pytest.fixture
def wait_for() -> WaitFor:
    """Synchronise on a condition with a deadline (never a bare sleep)."""
    return _wait_for
