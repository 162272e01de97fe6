"""Replay a CSV of ticks at real speed, N times faster, or as fast as possible.

The file's first line (after blank lines and `#` comments) is a header that names its columns;
they are found by name, in any order, case and surrounding spaces ignored:
- `symbol` (or `ticker`), `price`: required;
- the time: one of `timestamp`, `ts`, `time`, `ts_ms` (or `timestamp_ms`): required;
- `volume` (or `size`): optional, 0 when absent or empty;
- `seq` and `source` are accepted and ignored (seq is counted again from the file's order, the
  source is always "replay"), so a dump of the ticks topic or table replays as it is.
Any other column, a column named twice, or a missing required one is a `ReplayFormatError`,
raised before the first row: the settings check it at start (exit 2, one line).

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

import csv
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from common.contract import Tick, short
from common.times import epoch_ms
from producer.sources.base import Item, Rejected, StreamSource

# Column names as written in a header -> the column they stand for.
COLUMN_NAMES = {
    "symbol": "symbol",
    "ticker": "symbol",
    "timestamp": "ts",
    "ts": "ts",
    "time": "ts",
    "ts_ms": "ts",
    "timestamp_ms": "ts",
    "price": "price",
    "volume": "volume",
    "size": "volume",
    "seq": None,  # counted again from the file's order
    "source": None,  # always "replay"
}
REQUIRED_COLUMNS = ("symbol", "ts", "price")
# A longer line is no tick row; the csv module would refuse it anyway (at 128 KiB).
MAX_LINE_CHARS = 64 * 1024


class ReplayFormatError(ValueError):
    """The file cannot be replayed at all (its header); the message is one line for the user."""


def parse_timestamp(text: str) -> int:
    return epoch_ms(text)


def _open(path: Path) -> TextIO:
    # utf-8-sig drops a BOM (spreadsheets write one); surrogateescape keeps bad bytes as they
    # were, so a row holding them is refused with its exact bytes instead of ending the file.
    return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")


def _rows(f: TextIO) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, fields or None if unreadable, raw line) of each line worth reading."""
    for lineno, line in enumerate(f, start=1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if len(text) > MAX_LINE_CHARS:
            yield lineno, None, text[:MAX_LINE_CHARS]
            continue
        try:
            row = next(csv.reader([text]))
        except csv.Error:
            yield lineno, None, text
            continue
        yield lineno, row, text


def columns(header: list[str], where: str = "the header") -> dict[str, int]:
    """Column -> index from a header row, or ReplayFormatError saying what is wrong."""
    found: dict[str, int] = {}
    accepted = ", ".join(COLUMN_NAMES)
    for index, name in enumerate(header):
        key = name.strip().lstrip("\ufeff").lower()
        if key not in COLUMN_NAMES:
            raise ReplayFormatError(
                f"{where} names a column {short(name.strip(), 40)} that replay does not know "
                f"(accepted: {accepted}); the first line must be the header"
            )
        column = COLUMN_NAMES[key]
        if column is None:
            continue
        if column in found:
            raise ReplayFormatError(f"{where} names the {column} column twice")
        found[column] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        raise ReplayFormatError(
            f"{where} lacks the {', '.join(missing)} column(s): it must name symbol, "
            "timestamp (or ts, time, ts_ms) and price, and may name volume"
        )
    return found


def read_header(path: Path) -> dict[str, int]:
    """The file's columns from its header; ReplayFormatError (or OSError) if it has none."""
    with _open(path) as f:
        for lineno, row, _ in _rows(f):
            if row is None:
                raise ReplayFormatError(f"line {lineno} (the header) is not readable CSV")
            return columns(row, f"the header (line {lineno})")
    raise ReplayFormatError("the file holds no header and no rows")


def read_replay(path: Path, symbols: Sequence[str] | None = None) -> Iterator[Tick | Rejected]:
    """The file's rows as ticks (unvalidated) or rejections, in file order; unpaced.

    Raises ReplayFormatError before the first row if the header is not usable.
    """
    wanted = set(symbols) if symbols else None
    last: dict[str, tuple[int, int]] = {}  # symbol -> (ts, seq) of its previous row
    with _open(path) as f:
        rows = _rows(f)
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
