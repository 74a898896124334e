"""Waiting for a condition, never for a fixed time: a test that sleeps a constant is slow on an idle
machine and flaky on a busy one. ``until`` polls a predicate until it holds (returning its value) and
fails after a deadline, naming what it waited for; ``until_async`` does the same inside a Textual Pilot
(the app keeps running between polls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.05  # how often a condition is looked at again (not a wait for anything: the deadline bounds it)


def until(predicate: Callable[[], T], timeout: float = 30, what: str | Callable[[], str] = "the condition",
          poll: float = POLL) -> T:
    """The first true value of ``predicate()``; AssertionError when it is still false after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what() if callable(what) else what} did not happen within {timeout:g} s")
        time.sleep(poll)


async def until_async(predicate: Callable[[], T], timeout: float = 30,
                      what: str | Callable[[], str] = "the condition", poll: float = POLL) -> T:
    """``until`` for a coroutine: the event loop (a Textual app under Pilot) runs while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what() if callable(what) else what} did not happen within {timeout:g} s")
        await asyncio.sleep(poll)
