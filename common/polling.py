"""Waiting on a condition with a deadline, the one way every stage, tool and test waits; and
polling Kafka without spinning."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

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


def poll_paced(
    consumer: Any, timeout_ms: int, stop: threading.Event | None = None, **kwargs: Any
) -> dict:
    """A Kafka consumer's poll() that, when it returns nothing, has taken its whole timeout.

    kafka-python's poll() can return at once with nothing while the consumer has no partitions
    (the topic does not exist yet, or has no metadata, or the group is rebalancing): a loop
    around it would then spin a core. So an empty turn waits out the rest of `timeout_ms` (or
    until `stop` is set); a turn with records returns at once, as the work it brings paces it.
    """
    started = time.monotonic()
    records = consumer.poll(timeout_ms=timeout_ms, **kwargs)
    if not records:
        rest = timeout_ms / 1000 - (time.monotonic() - started)
        if rest > 0:
            if stop is not None:
                stop.wait(rest)
            else:
                time.sleep(rest)
    return records


class Backoff:
    """Exponential delays between retries: initial, 2x, 4x ... capped at maximum. With `jitter`,
    each delay is a random fraction of that ("full jitter"), so that clients failing together
    do not all retry together."""

    def __init__(self, initial_s: float = 0.5, maximum_s: float = 10.0, jitter: bool = False):
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.jitter = jitter
        self._next = initial_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum_s)
        return random.uniform(0, delay) if self.jitter else delay

    def reset(self) -> None:
        self._next = self.initial_s
