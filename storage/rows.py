"""From contract objects to the rows and write timestamps of the tables (pure functions)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence

from cassandra.util import Date

from common.buckets import bar_bucket_day
from common.contract import Aggregate, Bar, Tick

DAY_MS = 86_400_000
# Micros per milli: latest_prices' write timestamp is ts * 1000 + seq, so seq gets 1000 slots.
_SEQ_SLOTS = 1000


def utc_day(ms: int) -> Date:
    """The UTC calendar day of an epoch-millisecond time, as the driver's `date` value."""
    return Date(ms // DAY_MS)


def latest_timestamp(tick: Tick) -> int:
    """The write timestamp (micros) of a tick's latest_prices row: its event time.

    Cassandra keeps the cell with the highest write timestamp, so a tick with an older
    (ts, seq) can never replace a newer one, whatever order they arrive in. A seq above 999
    shares the last micro-slot of its millisecond (more than 1000 trades of one symbol in one
    millisecond); ties are then broken by Cassandra comparing the values.
    """
    return tick.ts * _SEQ_SLOTS + min(tick.seq, _SEQ_SLOTS - 1)


def aggregate_timestamp(agg: Aggregate) -> int:
    """The write timestamp (micros) of an aggregate row: window start plus its tick count.

    A window is emitted again each time more of its ticks arrive, so the emission with more
    ticks is the newer one: it wins even if an earlier emission is delivered after it. The
    start keeps the timestamp near event time, which TimeWindowCompactionStrategy buckets by.
    """
    return agg.window_start * 1000 + agg.count


def unique_ticks(ticks: Iterable[Tick]) -> list[Tick]:
    """One tick per identity, the last delivered winning (a redelivery is the same tick)."""
    return list({t.identity: t for t in ticks}.values())


def newest_per_symbol(ticks: Iterable[Tick]) -> list[Tick]:
    newest: dict[str, Tick] = {}
    for t in ticks:
        seen = newest.get(t.symbol)
        if seen is None or latest_timestamp(t) >= latest_timestamp(seen):
            newest[t.symbol] = t
    return list(newest.values())


def final_aggregates(aggs: Iterable[Aggregate]) -> list[Aggregate]:
    """One emission per window: the one with the most ticks (the last delivered on a tie)."""
    best: dict[tuple[str, int, int], Aggregate] = {}
    for a in aggs:
        seen = best.get(a.identity)
        if seen is None or a.count >= seen.count:
            best[a.identity] = a
    return list(best.values())


def by_partition(ticks: Sequence[Tick], size: int) -> Iterator[list[Tick]]:
    """Ticks grouped by their partition (symbol, day), in chunks of at most `size`."""
    groups: dict[tuple[str, int], list[Tick]] = {}
    for t in ticks:
        groups.setdefault((t.symbol, t.ts // DAY_MS), []).append(t)
    for group in groups.values():
        for i in range(0, len(group), size):
            yield group[i : i + size]


def tick_values(tick: Tick, ttl_s: int) -> tuple:
    return (tick.symbol, utc_day(tick.ts), tick.ts, tick.seq, tick.price, tick.volume,
            tick.source, ttl_s)  # fmt: skip


def latest_values(tick: Tick) -> tuple:
    return (tick.symbol, tick.price, tick.volume, tick.ts, tick.seq, tick.source,
            latest_timestamp(tick))  # fmt: skip


def aggregate_values(agg: Aggregate, ttl_s: int) -> tuple:
    return (agg.symbol, agg.window_ms, utc_day(agg.window_start), agg.window_start,
            agg.window_end, agg.open, agg.high, agg.low, agg.close, agg.avg, agg.vwap,
            agg.volume, agg.count, aggregate_timestamp(agg), ttl_s)  # fmt: skip


def bar_bucket(interval: str, start_ms: int) -> Date:
    """The `bars` partition of a bar, as the driver's `date` value (see common.buckets)."""
    return _bucket_of_day(interval, start_ms // DAY_MS)


@functools.lru_cache(maxsize=4096)
def _bucket_of_day(interval: str, day: int) -> Date:
    # A backfill writes ~1,440 bars per day: the date arithmetic once per day, not per bar.
    return Date(bar_bucket_day(interval, day * DAY_MS))


def unique_bars(bars: Iterable[Bar]) -> list[Bar]:
    """One bar per identity, the last delivered winning (a source's correction of a bar)."""
    return list({b.identity: b for b in bars}.values())


def bars_by_partition(bars: Sequence[Bar], size: int) -> Iterator[list[Bar]]:
    """Bars grouped by their partition (symbol, interval, bucket), in chunks of at most `size`."""
    groups: dict[tuple[str, str, int], list[Bar]] = {}
    for b in bars:
        key = (b.symbol, b.interval, bar_bucket(b.interval, b.start).days_from_epoch)
        groups.setdefault(key, []).append(b)
    for group in groups.values():
        for i in range(0, len(group), size):
            yield group[i : i + size]


def bar_values(bar: Bar) -> tuple:
    bucket = bar_bucket(bar.interval, bar.start)
    return (bar.symbol, bar.interval, bucket, bar.start, bar.open, bar.high, bar.low,
            bar.close, bar.volume, bar.source)  # fmt: skip
