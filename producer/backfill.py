"""History: a symbol's bars fetched from its source and published to the bars topic.

`Backfill` fetches and publishes the bars of some symbols over a range ending now, in requests
no longer than the source serves at once and no further back than it keeps (`BarLimit`),
pausing between requests to a polled source; the HTTP client's deadlines and 429 backoff apply
as they do to live rounds. Only complete bars are asked for: the range ends at the start of the
current bar, whose live ticks the processor is still aggregating.

`Follower` runs a Backfill in the background for each symbol the producer starts following: at
start, when one is added while running, and when a fleet member takes one over. A range that
reaches back past an outage refills its gap: the bars of the outage are fetched with the rest,
and storing again a bar that is stored already changes nothing (same identity, same values).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from common.contract import BAR_INTERVALS, Bar
from common.settings import format_duration
from producer.publisher import Publisher
from producer.sources.base import Failed, History, NoData, PolledSource, Rejected
from producer.stats import ProducerCounters

logger = logging.getLogger(__name__)


@dataclass
class BackfillResult:
    bars: int = 0
    rejected: int = 0
    failed: int = 0
    empty: int = 0
    requests: int = 0
    # symbol -> why its history could not be had (a request failed), for the summary.
    failures: dict[str, str] = field(default_factory=dict)


def windows(
    source: History, interval: str, range_ms: int, now_ms: int
) -> Iterator[tuple[int, int]]:
    """[start, end) of each request for `range_ms` of complete `interval` bars up to `now_ms`,
    oldest first; the range is cut to what the source keeps."""
    step = BAR_INTERVALS[interval]
    limit = source.BAR_LIMITS[interval]
    end = now_ms - now_ms % step
    start = end - range_ms
    if limit.reach_ms and end - start > limit.reach_ms:
        start = end - limit.reach_ms
    while start < end:
        yield start, min(end, start + limit.span_ms)
        start += limit.span_ms


class Backfill:
    def __init__(
        self,
        source: History,
        publisher: Publisher,
        counters: ProducerCounters,
        stop: threading.Event,
        pause_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ):
        self._source = source
        self._publisher = publisher
        self._counters = counters
        self._stop = stop
        # Only a polled source is a remote service to be polite to.
        self._pause_s = pause_s if isinstance(source, PolledSource) else 0.0
        self._clock = clock

    @property
    def source(self) -> History:
        return self._source

    def check(self, interval: str, range_ms: int) -> str | None:
        """Why this source cannot serve `interval` bars over `range_ms`, or None if it can
        (the range is then cut to what it keeps, and said so)."""
        limits = self._source.BAR_LIMITS
        if interval not in limits:
            served = ", ".join(limits) or "none"
            return f"source {self._source.name} serves no {interval} bars (it serves: {served})"
        reach = limits[interval].reach_ms
        if reach and range_ms > reach:
            logger.warning(
                "source=%s keeps %s bars for %s only: the range %s is cut to that",
                self._source.name, interval, format_duration(reach), format_duration(range_ms),
            )  # fmt: skip
        return None

    def run(self, symbols: Iterable[str], interval: str, range_ms: int) -> BackfillResult:
        """Fetch and publish; stops between requests when the stop flag is set."""
        result = BackfillResult()
        now = self._source.history_end_ms(int(self._clock() * 1000))
        spans = list(windows(self._source, interval, range_ms, now))
        for symbol in symbols:
            for start, end in spans:
                if self._stop.is_set():
                    return result
                if result.requests and self._pause_s and self._stop.wait(self._pause_s):
                    return result
                result.requests += 1
                self._request(symbol, interval, start, end, result)
        return result

    def _request(
        self, symbol: str, interval: str, start: int, end: int, result: BackfillResult
    ) -> None:
        found: list[Bar] = []
        for item in self._source.bars(symbol, interval, start, end):
            if item.__class__ is Bar:
                found.append(item)
            elif isinstance(item, Rejected):
                result.rejected += 1
                self._publisher.dead_letter(item.reason, item.raw, item.symbol or symbol)
            elif isinstance(item, NoData):
                result.empty += 1
                logger.info("no history symbol=%s reason=%r", symbol, item.reason)
            elif isinstance(item, Failed):
                result.failed += 1
                self._counters.failed += 1
                result.failures[symbol] = item.reason
                logger.warning("history failed symbol=%s reason=%r", symbol, item.reason)
        if found:
            sent = self._publisher.publish_bars(found)
            result.bars += sent
            result.rejected += len(found) - sent


class Follower:
    """Backfills, on a thread of its own, each symbol as the producer starts following it."""

    def __init__(
        self,
        backfill: Backfill,
        interval: str,
        range_ms: int,
        halt: threading.Event,
        daily_range_ms: int = 0,
    ):
        self._backfill = backfill
        # What each symbol gets: (interval, range), the finest first (the chart opens on it).
        self._series = [(interval, range_ms)]
        if daily_range_ms and interval != "1d" and backfill.check("1d", daily_range_ms) is None:
            self._series.append(("1d", daily_range_ms))
        # Set by close(); the backfill's source was built with it, so a request in flight is
        # cut at once too.
        self._halt = halt
        self._following: frozenset[str] = frozenset()
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def follow(self, symbols: Iterable[str]) -> None:
        """The symbols followed now: those not followed just before are backfilled."""
        now = frozenset(symbols)
        new = [s for s in symbols if s not in self._following]
        self._following = now
        if not new:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="backfill", daemon=True)
            self._thread.start()
        for symbol in dict.fromkeys(new):
            self._queue.put(symbol)

    def close(self, timeout_s: float = 10.0) -> None:
        self._halt.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
        close = getattr(self._backfill.source, "close", None)
        if close is not None:
            close()

    def _work(self) -> None:
        while not self._halt.is_set():
            symbol = self._queue.get()
            if symbol is None:
                return
            if symbol not in self._following:
                continue  # let go of before its turn came
            for interval, range_ms in self._series:
                self._one(symbol, interval, range_ms)

    def _one(self, symbol: str, interval: str, range_ms: int) -> None:
        began = time.monotonic()
        try:
            result = self._backfill.run([symbol], interval, range_ms)
        except Exception:  # noqa: BLE001 - history must never take the live prices down
            logger.exception("backfill of %s failed", symbol)
            return
        logger.info(
            "backfilled symbol=%s interval=%s range=%s bars=%d rejected=%d failed=%d "
            "took_s=%.1f",
            symbol, interval, format_duration(range_ms), result.bars, result.rejected,
            result.failed, time.monotonic() - began,
        )  # fmt: skip
