"""The reference aggregation: what the processor must output, in plain Python.

Small on purpose, so it can be read in one sitting and trusted: the tests compare Spark's output
with it, and anyone can recompute stored aggregates from the ticks with it.

Rules (the processor follows the same ones):
- Tumbling windows aligned to the epoch: a tick at ts falls in [ts - ts % w, ts - ts % w + w).
- open and close are the prices of the first and last tick in (ts, seq) order; seq orders ticks of
  one symbol within one millisecond. Price breaks a tie only for ticks that repeat (ts, seq),
  which the contract says should not happen, so the result is deterministic even then.
- avg is the mean price; vwap is sum(price * volume) / sum(volume), or avg when all volumes are 0.
- Watermark (see `aggregate_batches`): Spark's rule for windowed aggregations. Before each
  micro-batch the watermark is the highest event time of all earlier batches minus the delay
  (never lower than before; 0 before the first batch). A tick counts in a window only if that
  window ends after the watermark; otherwise it is dropped as late, per window size.
- Counting late ticks: Spark's numRowsDroppedByWatermark counts rows after its partial
  aggregation, so late ticks of one (symbol, window) in one micro-batch and input partition count
  once. `Outcome.late_groups` is that number for a one-partition topic; `Outcome.dropped` lists
  every late (tick, window size).

Sums use math.fsum (exact); Spark adds doubles in whatever order its partitions give, so compare
avg and vwap with a relative tolerance (FLOAT_REL_TOL). The other fields must match exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from common.contract import Aggregate, Tick

# Identity of an aggregate: (symbol, window_ms, window_start).
Identity = tuple[str, int, int]

# Relative tolerance for avg and vwap: a few hundred ulps of double rounding from summing in a
# different order, far below a cent on any price.
FLOAT_REL_TOL = 1e-9
_EXACT = ("symbol", "window_ms", "window_start", "window_end", "open", "high", "low", "close",
          "volume", "count")  # fmt: skip
_APPROX = ("avg", "vwap")


def window_start(ts: int, window_ms: int) -> int:
    return ts - ts % window_ms


def identity(agg: Aggregate) -> Identity:
    return (agg.symbol, agg.window_ms, agg.window_start)


def _order(tick: Tick) -> tuple[int, int, float]:
    return (tick.ts, tick.seq, tick.price)


def summarize(symbol: str, window_ms: int, start: int, ticks: Sequence[Tick]) -> Aggregate:
    """The aggregate of ticks that all belong to one symbol and one window."""
    if not ticks:
        raise ValueError("a window needs at least one tick")
    ordered = sorted(ticks, key=_order)
    prices = [t.price for t in ordered]
    volume = sum(t.volume for t in ordered)
    avg = math.fsum(prices) / len(prices)
    vwap = math.fsum(t.price * t.volume for t in ordered) / volume if volume else avg
    return Aggregate(
        symbol=symbol,
        window_ms=window_ms,
        window_start=start,
        window_end=start + window_ms,
        open=ordered[0].price,
        high=max(prices),
        low=min(prices),
        close=ordered[-1].price,
        avg=avg,
        vwap=vwap,
        volume=volume,
        count=len(ordered),
    )


def aggregate(ticks: Iterable[Tick], windows_ms: Sequence[int]) -> dict[Identity, Aggregate]:
    """Every tick counts: the aggregates of all ticks, per symbol, window size and window."""
    groups: dict[Identity, list[Tick]] = {}
    for tick in ticks:
        for w in windows_ms:
            groups.setdefault((tick.symbol, w, window_start(tick.ts, w)), []).append(tick)
    return {key: summarize(*key, group) for key, group in sorted(groups.items())}


@dataclass(frozen=True)
class Outcome:
    aggregates: dict[Identity, Aggregate]
    # (tick, window_ms) pairs dropped as later than the watermark.
    dropped: list[tuple[Tick, int]]
    # Distinct late (symbol, window_ms, window_start) per batch, summed over the batches.
    late_groups: int


def aggregate_batches(
    batches: Iterable[Sequence[Tick]], windows_ms: Sequence[int], watermark_ms: int
) -> Outcome:
    """The final aggregates when the ticks arrive in these micro-batches, watermark applied."""
    watermark = 0
    groups: dict[Identity, list[Tick]] = {}
    dropped: list[tuple[Tick, int]] = []
    late_groups = 0
    for batch in batches:
        late_in_batch: set[Identity] = set()
        for tick in batch:
            for w in windows_ms:
                start = window_start(tick.ts, w)
                if start + w <= watermark:
                    dropped.append((tick, w))
                    late_in_batch.add((tick.symbol, w, start))
                else:
                    groups.setdefault((tick.symbol, w, start), []).append(tick)
        late_groups += len(late_in_batch)
        if batch:
            watermark = max(watermark, max(t.ts for t in batch) - watermark_ms)
    aggregates = {key: summarize(*key, group) for key, group in sorted(groups.items())}
    return Outcome(aggregates, dropped, late_groups)


def latest(aggregates: Iterable[Aggregate]) -> dict[Identity, Aggregate]:
    """Last value per identity, as an upserting store would keep them (input in arrival order)."""
    result: dict[Identity, Aggregate] = {}
    for agg in aggregates:
        result[identity(agg)] = agg
    return result


def differences(
    expected: Mapping[Identity, Aggregate],
    actual: Mapping[Identity, Aggregate],
    rel_tol: float = FLOAT_REL_TOL,
) -> list[str]:
    """Human-readable differences, empty when actual matches expected field by field."""
    problems = [f"missing {key}" for key in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected {key}: {actual[key]}" for key in sorted(actual.keys() - expected)]
    for key in sorted(expected.keys() & actual.keys()):
        want, got = expected[key], actual[key]
        for name in _EXACT:
            w, g = getattr(want, name), getattr(got, name)
            if w != g:
                problems.append(f"{key} {name}: want {w!r}, got {g!r}")
        for name in _APPROX:
            w, g = getattr(want, name), getattr(got, name)
            if not math.isclose(w, g, rel_tol=rel_tol, abs_tol=0.0):
                problems.append(f"{key} {name}: want {w!r}, got {g!r} (rel_tol {rel_tol})")
    return problems
