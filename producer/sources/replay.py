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

Pacing follows the file's own timestamps from its first row. The file must be in time order per
symbol, because `seq` (ticks of one symbol in the same millisecond) is counted as rows go by; a
row that goes back in time for its symbol is refused to the dead-letter topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from common.contract import Tick, short
from common.times import epoch_ms
from producer.replay_format import (
    REQUIRED_COLUMNS,
    ReplayFormatError,
    columns,
    open_csv,
    rows_of,
)
from producer.sources.base import Item, Rejected, StreamSource


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
                price = _number(row[layout["price"]])
                v = layout.get("volume")
                volume_text = row[v].strip() if v is not None and v < len(row) else ""
                volume = _number(volume_text) if volume_text else 0
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


def _number(text: str) -> int | float:
    """A whole number as an int, anything else float() reads as a float; the contract judges."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


class ReplaySource(StreamSource):
    name = "replay"

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
