"""Replay a CSV of ticks at real speed, N times faster, or as fast as possible.

The file's first line (after blank lines and `#` comments) is a header that names its columns;
they are found by name, in any order, case and surrounding spaces ignored:
- `symbol` (or `ticker`), `price`: required;
- the time: one of `timestamp`, `ts`, `time`, `ts_ms` (or `timestamp_ms`): required;
- `volume` (or `size`): optional, 0 when absent or empty;
- `seq` and `source` are accepted and ignored (seq is counted again from the file's order, the
  source is always "replay"), so a dump of the ticks topic or table replays as it is.
Any other column, a column named twice, or a missing required one is a `ReplayFormatError`,
raised before the first row: the settings check it at start (exit 2, one line;
producer/replay_format.py).

Timestamps are epoch milliseconds or ISO 8601 (a time without an offset is taken as UTC). Rows
are published as they are: a row that breaks the contract (lower-case symbol, seconds instead of
milliseconds, a price of 0) goes to the dead-letter topic, never silently fixed; so does a row
that cannot be read at all, with its line number. Bytes that are not UTF-8 are kept as they were
in the dead letter.

History: the file's ticks of a symbol rolled into bars of the interval asked, the whole file
whatever the range (a replay's times are its own, not now's); rows refused as ticks are left out
of the bars, and the live replay dead-letters them.

Pacing follows the file's own timestamps from its first row. The file must be in time order per
symbol, because `seq` (ticks of one symbol in the same millisecond) is counted as rows go by; a
row that goes back in time for its symbol is refused to the dead-letter topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from common.contract import BAR_INTERVALS, Bar, Tick, short
from common.times import epoch_ms
from producer.replay_format import (
    REQUIRED_COLUMNS,
    ReplayFormatError,
    columns,
    open_csv,
    rows_of,
)
from producer.sources.base import (
    DAY_MS,
    BarItem,
    BarLimit,
    Item,
    NoData,
    Rejected,
    StreamSource,
    number,
)


def parse_timestamp(text: str) -> int:
    return epoch_ms(text)


def read_replay(path: Path, symbols: Sequence[str] | None = None) -> Iterator[Tick | Rejected]:
    """The file's rows as ticks (unvalidated) or rejections, in file order; unpaced.

    Raises ReplayFormatError before the first row if the header is not usable.
    """
    wanted = set(symbols) if symbols else None
    last: dict[str, tuple[int, int]] = {}  # symbol -> (ts, seq) of its previous row
    with open_csv(path) as f:
        rows = rows_of(f)
        first = next(rows, None)
        if first is None:
            raise ReplayFormatError("the file holds no header and no rows")
        lineno, header, _ = first
        if header is None:
            raise ReplayFormatError(f"line {lineno} (the header) is not readable CSV")
        layout = columns(header, f"the header (line {lineno})")
        # A row may end early when only optional columns (volume) are left out.
        width = max(layout[c] for c in REQUIRED_COLUMNS) + 1
        for lineno, row, text in rows:
            raw = text.encode("utf-8", "surrogateescape")
            if row is None:
                yield Rejected(f"replay line {lineno}: not a readable CSV row", raw)
                continue
            symbol = row[layout["symbol"]].strip() if len(row) > layout["symbol"] else None
            if wanted is not None and symbol not in wanted:
                continue
            if len(row) < width:
                yield Rejected(
                    f"replay line {lineno}: {len(row)} field(s), fewer than the header's",
                    raw,
                    symbol,
                )
                continue
            try:
                ts = parse_timestamp(row[layout["ts"]])
                price = number(row[layout["price"]])
                v = layout.get("volume")
                volume_text = row[v].strip() if v is not None and v < len(row) else ""
                volume = number(volume_text) if volume_text else 0
            except (ValueError, OverflowError) as e:
                yield Rejected(
                    f"replay line {lineno}: cannot read the row ({short(str(e), 120)})",
                    raw,
                    symbol,
                )
                continue
            prev_ts, prev_seq = last.get(symbol, (None, -1))
            if prev_ts is not None and ts < prev_ts:
                yield Rejected(
                    f"replay line {lineno}: {symbol} goes back in time ({ts} after {prev_ts}); "
                    "replay files must be in time order per symbol",
                    raw,
                    symbol,
                )
                continue
            seq = prev_seq + 1 if ts == prev_ts else 0
            last[symbol] = (ts, seq)
            yield Tick(symbol, price, volume, ts, "replay", seq)


def replay_bars(path: Path, symbol: str, interval: str) -> Iterator[Bar]:
    """The file's valid ticks of `symbol` as bars of `interval`, in time order."""
    step = BAR_INTERVALS[interval]
    bar: list | None = None  # [start, open, high, low, close, volume]
    for item in read_replay(path, [symbol]):
        if not isinstance(item, Tick):
            continue
        try:
            tick = item.validated()
        except ValueError:
            continue
        start = tick.ts - tick.ts % step
        if bar is not None and bar[0] == start:
            bar[2] = max(bar[2], tick.price)
            bar[3] = min(bar[3], tick.price)
            bar[4] = tick.price
            bar[5] += tick.volume
            continue
        if bar is not None:
            yield Bar(symbol, interval, *bar, "replay")
        bar = [start, tick.price, tick.price, tick.price, tick.price, tick.volume]
    if bar is not None:
        yield Bar(symbol, interval, *bar, "replay")


class ReplaySource(StreamSource):
    name = "replay"
    BAR_LIMITS = {  # noqa: RUF012 - a class constant, read only
        interval: BarLimit(span_ms=100 * 366 * DAY_MS) for interval in BAR_INTERVALS
    }

    def __init__(
        self,
        stop: threading.Event,
        path: Path,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ):
        self._stop = stop
        self._path = path
        self._speed = speed
        self._clock = clock
        # Paces the replay; returns True when stopped. Tests pass a fake that moves `clock`.
        self._wait = stop.wait if wait is None else wait

    def fetch_bars(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[BarItem]:
        found = False
        for bar in replay_bars(self._path, symbol, interval):
            found = True
            yield bar
        if not found:
            yield NoData(symbol, f"the replay file has no ticks of {symbol}")

    def stream(self, symbols: Sequence[str]) -> Iterator[Item]:
        rows = read_replay(self._path, symbols or None)
        if self._speed <= 0:
            yield from rows
            return
        began: float | None = None
        first_ts = 0
        for item in rows:
            if isinstance(item, Tick):
                if began is None:
                    began, first_ts = self._clock(), item.ts
                wait = began + (item.ts - first_ts) / 1000 / self._speed - self._clock()
                if wait > 0 and self._wait(wait):
                    return
            yield item
