"""A stage's counters and the periodic line that shows them.

Each stage counts what happened to what it read (one whole number per outcome, on a dataclass of
its own) and logs them as one `key=value` line now and then and once at the end; the line's
shape and the pacing are the same everywhere, so a log reader greps every stage alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields


@dataclass
class Counters:
    """Base of a stage's counters: subclasses declare `name: int = 0` fields only."""

    def line(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


class Every:
    """Says when a periodic line is due: at most once per `period_s`, measured from `start()`."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic):
        self._period = period_s
        self._clock = clock
        self._next = clock() + period_s

    def start(self) -> None:
        self._next = self._clock() + self._period

    def due(self) -> bool:
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._period
        return True
