"""The fetch-and-publish loops: drive a source, hand what it gives to the publisher, count.

Polled sources run on a `schedule` job every interval (never faster than the source's minimum);
streaming sources are read as fast as they pace themselves. The stop flag is checked between
items, never in the middle of one: whatever a source has handed over is published before the
loop ends, and `Publisher.close()` flushes it, so a SIGTERM loses nothing that was fetched. (An
HTTP request still in flight is cut by the client's watchdog when the flag is set: it had handed
nothing over yet.) No item ends a round: one that cannot be handled is counted as failed and
logged, and the round goes on with the next.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import schedule

from common.contract import Tick
from common.counters import Every
from producer.backfill import Follower
from producer.fleet import Fleet
from producer.publisher import Publisher
from producer.settings import ProducerSettings
from producer.sources.base import Failed, Item, NoData, PolledSource, Rejected, StreamSource
from producer.stats import ProducerCounters

logger = logging.getLogger(__name__)


def runner_for(
    settings: ProducerSettings, source: PolledSource | StreamSource, *rest: Any, **named: Any
) -> Runner:
    """The loop this source needs (the arguments are Runner's): rounds on a schedule (polled)
    or reading as it paces itself (streaming)."""
    kind = PolledRunner if isinstance(source, PolledSource) else StreamRunner
    return kind(settings, source, *rest, **named)


class Runner:
    """What both loops share: opening and flushing the publisher, counting, the stats line,
    and handing what is not a tick (a rejection, no data, a failure) where it goes."""

    def __init__(
        self,
        settings: ProducerSettings,
        source: PolledSource | StreamSource,
        publisher: Publisher,
        counters: ProducerCounters,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        fleet: Fleet | None = None,
        follower: Follower | None = None,
    ):
        self._settings = settings
        # Backfills each symbol as it starts being followed (see producer.backfill).
        self._follower = follower
        # Alone, every symbol; in a fleet, those this member holds, asked before each round.
        self._fleet = fleet
        self._symbols: Callable[[], tuple[str, ...]] = (
            (lambda: settings.symbols) if fleet is None else fleet.fenced_round
        )
        self._source = source
        self._publisher = publisher
        self._counters = counters
        self._stop = stop
        self._clock = clock
        # symbol -> what was last seen for it; an answer equal to it is not sent again.
        self._last_seen: dict[str, tuple[str, object]] = {}
        self._stats_due = Every(settings.stats_interval_ms / 1000, clock)

    def run(self) -> ProducerCounters:
        """Runs until stopped, MAX_TICKS is reached or a finite source ends; then flushes."""
        started = self._clock()
        self._stats_due.start()
        self._publisher.open()
        try:
            self._loop()
        finally:
            try:
                if self._follower is not None:
                    self._follower.close()
                self._publisher.close()
            finally:
                self._source_close()
                took = self._clock() - started
                logger.info(
                    "summary source=%s %s elapsed_s=%.1f",
                    self._source.name, self._counters.line(), took,
                )  # fmt: skip
        return self._counters

    def _loop(self) -> None:
        raise NotImplementedError

    def _other(self, item: Item) -> None:
        c = self._counters
        if isinstance(item, Rejected):
            self._publisher.dead_letter(item.reason, item.raw, item.symbol)
        elif isinstance(item, NoData):
            c.empty += 1
            if not self._seen(item.symbol, ("empty", item.reason)):
                logger.warning("no data symbol=%s reason=%r", item.symbol, item.reason)
        elif isinstance(item, Failed):
            c.failed += 1
            logger.warning("fetch failed symbols=%s reason=%r", ",".join(item.symbols), item.reason)
        else:
            raise TypeError(f"a source gave {type(item).__name__}, not a tick or an outcome")

    def _maybe_log_stats(self) -> None:
        if self._stats_due.due():
            self._log_stats()

    def _log_stats(self) -> None:
        logger.info("stats source=%s %s", self._source.name, self._counters.line())

    def _source_close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def _follow(self, symbols: tuple[str, ...]) -> None:
        if self._follower is not None:
            self._follower.follow(symbols)

    def _seen(self, symbol: str, state: tuple[str, object]) -> bool:
        if self._last_seen.get(symbol) == state:
            return True
        self._last_seen[symbol] = state
        return False


class StreamRunner(Runner):
    """Streaming sources (simulated, replay): read as fast as they pace themselves."""

    def _loop(self) -> None:
        source = self._source
        c = self._counters
        if self._fleet is not None:
            try:
                self._fleet_streams(source)
            except Exception:  # noqa: BLE001 - a broken source ends the run, logged, not a crash
                c.failed += 1
                logger.exception("source=%s failed; stopping", source.name)
            return
        publish = self._publisher.publish
        stop = self._stop
        # Looked up once: this loop runs per tick, tens of thousands a second.
        stats_due = self._stats_due.due
        limit = self._settings.max_ticks or -1
        # Replay publishes its whole file unless symbols were named.
        replay_all = source.name == "replay" and not self._settings.symbols_given
        symbols = () if replay_all else self._settings.symbols
        self._follow(symbols)
        try:
            for item in source.stream(symbols):
                if item.__class__ is Tick:
                    c.fetched += 1
                    publish(item)
                    if c.fetched == limit:
                        logger.info("stopping after max_ticks=%d", limit)
                        return
                else:
                    self._other(item)
                if stop.is_set():
                    return
                if stats_due():
                    self._log_stats()
        except Exception:  # noqa: BLE001 - a broken source ends the run, logged, not a crash
            c.failed += 1
            logger.exception("source=%s failed; stopping", source.name)
            return
        logger.info("source=%s has no more ticks", source.name)

    def _fleet_streams(self, source: StreamSource) -> None:
        """In a fleet: stream the symbols held, and start afresh on those held when they change;
        the session is checked with ZooKeeper once a second (the fence: see producer.fleet)."""
        fleet, stop, c = self._fleet, self._stop, self._counters
        while not stop.is_set():
            fleet.changed.clear()
            symbols = self._symbols()
            self._follow(symbols)
            if not symbols:
                fleet.changed.wait(1.0)
                continue
            # A member that lost its session and joined again has a new name.
            self._publisher.publish_as(fleet.name)
            fenced_at = self._clock()
            for item in source.stream(symbols):
                # Before handing anything over: a process paused (SIGSTOP) past its session
                # resumes here, and must learn from ZooKeeper that its locks are gone first.
                if self._clock() - fenced_at >= 1.0:
                    fenced_at = self._clock()
                    if not set(symbols) <= set(self._symbols()):
                        break
                if item.__class__ is Tick:
                    if item.symbol not in fleet.publishable:
                        break  # let go of meanwhile: start again on what is held
                    c.fetched += 1
                    self._publisher.publish(item)
                    fleet.last_ticks[item.symbol] = item.ts
                else:
                    self._other(item)
                if stop.is_set() or fleet.changed.is_set():
                    break
                self._maybe_log_stats()


class PolledRunner(Runner):
    """Polled sources (yahoo, stooq, finnhub): a round on a schedule, every interval."""

    def _loop(self) -> None:
        source = self._source
        settings = self._settings
        interval = settings.interval_ms / 1000
        floor = source.min_interval_s(len(settings.symbols))
        if interval < floor:
            logger.warning(
                "interval raised from %.1fs to %.1fs: the minimum for %s with %d symbols",
                interval, floor, source.name, len(settings.symbols),
            )  # fmt: skip
            interval = floor
        logger.info("polling source=%s symbols=%s interval_s=%.1f",
                    source.name, ",".join(settings.symbols), interval)  # fmt: skip
        scheduler = schedule.Scheduler()
        scheduler.every(interval).seconds.do(self._round, source)
        self._round(source)  # the first round right away, not one interval in
        while not self._stop.is_set() and not self._reached_max():
            scheduler.run_pending()
            if self._fleet is not None and self._fleet.changed.is_set():
                # A symbol taken on between rounds gets its history now, not a round later.
                self._fleet.changed.clear()
                self._follow(self._fleet.owned())
            self._maybe_log_stats()
            idle = scheduler.idle_seconds
            idle = 1.0 if idle is None else idle
            self._stop.wait(min(max(idle, 0.05), 1.0))

    def _round(self, source: PolledSource) -> None:
        c = self._counters
        symbols = self._symbols()
        self._follow(symbols)
        if not symbols:
            return
        if self._fleet is not None:
            self._publisher.publish_as(self._fleet.name)
        items = source.fetch(symbols)
        while True:
            try:
                item = next(items, None)
            except Exception:  # noqa: BLE001 - sources do not raise; if one did, the round ends
                c.failed += 1
                logger.exception("round failed source=%s; next round as scheduled", source.name)
                return
            if item is None:
                return
            try:
                self._polled_item(item)
            except Exception:  # noqa: BLE001 - one item's trouble must not end the round
                c.failed += 1
                logger.exception(
                    "could not handle item=%s source=%s", type(item).__name__, source.name
                )
            if self._stop.is_set() or self._reached_max():
                return

    def _polled_item(self, item: Item) -> None:
        c = self._counters
        if isinstance(item, Tick):
            if self._seen(item.symbol, ("tick", item.ts)):
                c.unchanged += 1
            elif self._fleet is not None and item.symbol not in self._fleet.publishable:
                c.unchanged += 1  # let go of during the round: another member has it now
            else:
                c.fetched += 1
                self._publisher.publish(item)
                if self._fleet is not None:
                    self._fleet.last_ticks[item.symbol] = item.ts
        elif isinstance(item, Rejected) and item.symbol is not None:
            if self._seen(item.symbol, ("rejected", item.reason)):
                c.unchanged += 1
            else:
                self._other(item)
        else:
            self._other(item)

    def _reached_max(self) -> bool:
        return 0 < self._settings.max_ticks <= self._counters.fetched
