"""A chart's candles: the pipeline's own aggregates where it has them, the source's history bars
where it has not (before the pipeline followed the symbol, or while a producer was down), so
that one series runs from the past into the live window without a seam (pure functions).

Rows are tuples (t, open, high, low, close, vwap, volume, count, history): `vwap` and `count`
are None for history (a source's bar has neither), `history` is True for a candle made of
history bars only. For each candle start the choice is, in order: the aggregate of that window;
the source's bar of that size; the 1-minute candles of that span rolled up (5m and 1d charts:
today's daily candle, whose bar the source has not closed yet, is one of these).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DAY_MS = 86_400_000
MINUTE_MS = 60_000
# The history bar interval of each candle size that has one.
HISTORY_INTERVAL = {MINUTE_MS: "1m", 5 * MINUTE_MS: "5m", DAY_MS: "1d"}
# How far back 1-minute candles are rolled up to fill coarser ones (1m history is kept for days,
# not years; the source's own 5m and 1d bars cover the rest).
ROLL_UP_SPAN_MS = 7 * DAY_MS

Row = tuple


def from_aggregates(rows: Iterable[tuple]) -> list[Row]:
    """The store's aggregate rows (t, open, high, low, close, vwap, volume, count) as candles."""
    return [(*r, False) for r in rows]


def from_history(rows: Iterable[tuple]) -> list[Row]:
    """The store's bar rows (t, open, high, low, close, volume) as candles."""
    return [(t, o, h, lo, c, None, v, None, True) for t, o, h, lo, c, v in rows]


def join(*layers: Sequence[Row]) -> list[Row]:
    """One candle per start, oldest first: the first layer that has a start wins."""
    chosen: dict[int, Row] = {}
    for layer in layers:
        for row in layer:
            chosen.setdefault(row[0], row)
    return [chosen[t] for t in sorted(chosen)]


def roll_up(rows: Sequence[Row], size_ms: int) -> list[Row]:
    """Candles (oldest first) merged into candles of `size_ms`, aligned to the epoch."""
    out: list[Row] = []
    current: list | None = None
    for t, o, h, lo, c, _vwap, v, _n, hist in rows:
        start = t - t % size_ms
        if current is not None and current[0] == start:
            current[2] = max(current[2], h)
            current[3] = min(current[3], lo)
            current[4] = c
            current[6] = (current[6] or 0) + (v or 0)
            current[8] = current[8] and hist
            continue
        if current is not None:
            out.append(tuple(current))
        current = [start, o, h, lo, c, None, v or 0, None, hist]
    if current is not None:
        out.append(tuple(current))
    return out
