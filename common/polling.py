"""Waiting on a condition with a deadline: the one way every stage, tool and test waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold by the deadline; the text says what was awaited."""


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    every_s: float = 0.2,
    check: Callable[[], None] | None = None,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call predicate() until it returns something truthy, and return that.

    `check` runs before each try and may raise to end the wait early (a process it depends on
    has died); `describe` adds context to the timeout's message (a log's last lines).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if check is not None:
            check()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{describe()}" if describe is not None else ""
            raise WaitTimeout(f"timed out after {timeout_s:.0f}s waiting for {what}{extra}")
        time.sleep(every_s)
