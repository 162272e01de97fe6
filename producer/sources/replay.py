"""Replay a CSV of ticks at real speed, N times faster, or as fast as possible.

Columns: symbol, timestamp, price and an optional volume; a header row naming them (timestamp may
be called ts or time) lets them come in any order. Timestamps are epoch milliseconds or ISO 8601
(a time without an offset is taken as UTC). Rows are published as they are: a row that breaks the
contract (lower-case symbol, seconds instead of milliseconds, a price of 0) goes to the
dead-letter topic, never silently fixed.

Pacing follows the file's own timestamps from its first row. The file must be in time order per
symbol, because `seq` (ticks of one symbol in the same millisecond) is counted as rows go by; a
row that goes back in time for its symbol is refused to the dead-letter topic.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from common.contract import Tick
from common.times import epoch_ms
from producer.sources.base import Item, Rejected, StreamSource

_TS_NAMES = ("timestamp", "ts", "time")


def parse_timestamp(text: str) -> int:
    return epoch_ms(text)


def _columns(header: list[str]) -> tuple[int, int, int, int | None] | None:
    names = [h.strip().lower() for h in header]
    if "symbol" not in names:
        return None
    ts = next((names.index(n) for n in _TS_NAMES if n in names), None)
    if ts is None or "price" not in names:
        raise ValueError(f"header {header} must name symbol, timestamp and price columns")
    volume = names.index("volume") if "volume" in names else None
    return names.index("symbol"), ts, names.index("price"), volume


def read_replay(path: Path, symbols: Sequence[str] | None = None) -> Iterator[Tick | Rejected]:
    """The file's rows as ticks (unvalidated) or rejections, in file order; unpaced."""
    wanted = set(symbols) if symbols else None
    last: dict[str, tuple[int, int]] = {}  # symbol -> (ts, seq) of its previous row
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        layout: tuple[int, int, int, int | None] = (0, 1, 2, 3)
        first = True
        for lineno, row in enumerate(reader, start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            raw = ",".join(row).encode()
            if first:
                first = False
                try:
                    found = _columns(row)
                except ValueError as e:
                    yield Rejected(f"replay line {lineno}: {e}", raw)
                    continue
                if found is not None:
                    layout = found
                    continue
            s, t, p, v = layout
            try:
                symbol = row[s].strip()
                if wanted is not None and symbol not in wanted:
                    continue
                ts = parse_timestamp(row[t])
                price = float(row[p])
                volume_text = row[v].strip() if v is not None and v < len(row) else ""
                volume = int(volume_text) if volume_text else 0
            except (IndexError, ValueError) as e:
                yield Rejected(f"replay line {lineno}: cannot read the row ({e})", raw)
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


class ReplaySource(StreamSource):
    name = "replay"

    def __init__(self, stop: threading.Event, path: Path, speed: float, clock=time.monotonic):
        self._stop = stop
        self._path = path
        self._speed = speed
        self._clock = clock

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
                if wait > 0 and self._stop.wait(wait):
                    return
            yield item
