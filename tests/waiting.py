"""Waiting for a condition instead of for a time: a test under load waits longer, never fails sooner."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], within: float, what: str, every: float = 0.1) -> T:
    """The first truthy value of `condition()`, asked every `every` seconds; the test fails
    naming `what` if none comes within `within` seconds (a bound against hanging, set far above
    what the condition needs even on a loaded machine)."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"not within {within:g} s: {what} (last: {value!r})")
        time.sleep(every)
