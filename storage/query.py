"""Reading stored data back: ticks, aggregates or history bars of a symbol over a time range,
and latest prices."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from common.buckets import bar_buckets
from common.contract import BAR_INTERVALS, ContractError, validate_symbol
from common.settings import KEYSPACE_PATTERN, format_duration
from common.times import epoch_ms
from storage.rows import DAY_MS, utc_day

# Each day is a partition to read; a year of ticks is not something to print in a terminal.
MAX_SPAN_MS = 31 * DAY_MS
# History bars: 1m bars are a partition a day too; 5m a month, 1d a year (see schema.cql).
MAX_BAR_SPAN_MS = {"1m": 31 * DAY_MS, "5m": 366 * DAY_MS, "1d": 50 * 366 * DAY_MS}
DEFAULT_SPAN_MS = 3_600_000
LATEST = "latest"


class QueryError(ValueError):
    """A query that cannot be answered as asked; the message says how to ask."""


@dataclass(frozen=True)
class QueryRequest:
    target: str  # a symbol, or LATEST
    start_ms: int = 0
    end_ms: int = 0
    window_ms: int | None = None
    limit: int = 100
    bars: str | None = None  # a history bar interval: show those instead of ticks


def parse_time(text: str) -> int:
    """ISO 8601 (an offset or Z; none means UTC) or epoch milliseconds, as epoch ms."""
    try:
        return epoch_ms(text)
    except ValueError as e:
        raise QueryError(
            f"{text!r} is not a time: use ISO 8601 like 2025-08-27T13:30:00Z, or epoch ms"
        ) from e


def build_request(
    target: str,
    *,
    now_ms: int,
    last_ms: int | None = None,
    start: str | None = None,
    end: str | None = None,
    window_ms: int | None = None,
    limit: int = 100,
    bars: str | None = None,
) -> QueryRequest:
    if window_ms is not None and bars is not None:
        raise QueryError("ask for --window (aggregates) or --bars (history), not both")
    if bars is not None and bars not in BAR_INTERVALS:
        raise QueryError(f"--bars must be one of {', '.join(BAR_INTERVALS)}")
    if target.lower() == LATEST:
        if last_ms or start or end or window_ms or bars:
            raise QueryError("`latest` shows every symbol's newest price: it takes no range")
        return QueryRequest(LATEST, limit=limit)
    try:
        symbol = validate_symbol(target.upper())
    except ContractError as e:
        raise QueryError(str(e)) from e
    if last_ms is not None and end is not None:
        raise QueryError("--last counts back from now: use --from and --to for another range")
    end_ms = parse_time(end) if end is not None else now_ms
    if start is not None:
        start_ms = parse_time(start)
    else:
        start_ms = end_ms - (last_ms if last_ms is not None else DEFAULT_SPAN_MS)
    if start_ms >= end_ms:
        raise QueryError(
            f"the range is empty: start {_iso(start_ms)} is not before end {_iso(end_ms)}"
        )
    most = MAX_SPAN_MS if bars is None else MAX_BAR_SPAN_MS[bars]
    if end_ms - start_ms > most:
        raise QueryError(
            f"the range spans {format_duration(end_ms - start_ms)}; ask for at most "
            f"{format_duration(most)}"
        )
    return QueryRequest(symbol, start_ms, end_ms, window_ms, limit, bars)


def days_newest_first(start_ms: int, end_ms: int) -> list[int]:
    """The UTC day numbers that [start_ms, end_ms) touches, newest first."""
    return list(range((end_ms - 1) // DAY_MS, start_ms // DAY_MS - 1, -1))


class Reader:
    def __init__(self, session: Any, keyspace: str):
        if not KEYSPACE_PATTERN.match(keyspace):
            raise ValueError(f"keyspace name {keyspace!r} is not [a-z][a-z0-9_]{{0,47}}")
        self._session = session
        self._keyspace = keyspace
        self._ticks: Any = None
        self._aggregates: Any = None
        self._history: Any = None
        self._latest: Any = None

    def prepare(self) -> Reader:
        ks = self._keyspace  # validated: identifiers cannot be bind markers
        self._ticks = self._session.prepare(
            f"SELECT symbol, ts, seq, price, volume, source FROM {ks}.ticks "  # noqa: S608
            "WHERE symbol = ? AND day = ? AND ts >= ? AND ts < ? LIMIT ?"
        )
        self._history = self._session.prepare(
            f"SELECT symbol, interval, start, open, high, low, close, volume, source "  # noqa: S608
            f"FROM {ks}.bars WHERE symbol = ? AND interval = ? AND bucket = ? AND start >= ? "
            "AND start < ? LIMIT ?"
        )
        self._aggregates = self._session.prepare(
            f"SELECT symbol, window_ms, window_start, window_end, open, high, low, close, "  # noqa: S608
            f"avg, vwap, volume, count FROM {ks}.aggregates "
            "WHERE symbol = ? AND window_ms = ? AND day = ? AND window_start >= ? "
            "AND window_start < ? LIMIT ?"
        )
        self._latest = self._session.prepare(
            f"SELECT symbol, ts, seq, price, volume, source FROM {ks}.latest_prices"  # noqa: S608
        )
        return self

    def run(self, request: QueryRequest) -> list[dict[str, Any]]:
        if request.target == LATEST:
            rows = [_row(r) for r in self._session.execute(self._latest)]
            return sorted(rows, key=lambda r: r["symbol"])[: request.limit]
        found: list[dict[str, Any]] = []
        if request.bars is not None:
            for day in bar_buckets(request.bars, request.start_ms, request.end_ms):
                left = request.limit - len(found)
                if left <= 0:
                    break
                params = (request.target, request.bars, utc_day(day * DAY_MS), request.start_ms,
                          request.end_ms, left)  # fmt: skip
                found.extend(_row(r) for r in self._session.execute(self._history, params))
            return found
        for day in days_newest_first(request.start_ms, request.end_ms):
            left = request.limit - len(found)
            if left <= 0:
                break
            if request.window_ms is None:
                params = (request.target, utc_day(day * DAY_MS), request.start_ms,
                          request.end_ms, left)  # fmt: skip
                found.extend(_row(r) for r in self._session.execute(self._ticks, params))
            else:
                params = (request.target, request.window_ms, utc_day(day * DAY_MS),
                          request.start_ms, request.end_ms, left)  # fmt: skip
                found.extend(_row(r) for r in self._session.execute(self._aggregates, params))
        return found


def _row(row: Any) -> dict[str, Any]:
    out = row._asdict()
    for name in ("ts", "window_start", "window_end", "start"):
        if name in out and out[name] is not None:
            # The driver returns naive datetimes in UTC.
            out[name] = int(out[name].replace(tzinfo=timezone.utc).timestamp() * 1000)
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(rows), indent=None)


def to_table(rows: Sequence[dict[str, Any]], request: QueryRequest) -> str:
    if not rows:
        return _empty_message(request)
    if request.target == LATEST:
        columns = ["symbol", "time", "price", "volume", "source"]
    elif request.bars is not None:
        columns = ["start", "open", "high", "low", "close", "volume", "source"]
    elif request.window_ms is None:
        columns = ["time", "seq", "price", "volume", "source"]
    else:
        columns = ["window_start", "open", "high", "low", "close", "vwap", "volume", "count"]
    cells = [[_cell(c, r) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines)


def _cell(column: str, row: dict[str, Any]) -> str:
    if column == "time":
        return _iso(row["ts"])
    if column in ("window_start", "start"):
        return _iso(row[column])
    value = row[column]
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _empty_message(request: QueryRequest) -> str:
    if request.target == LATEST:
        return "no prices stored yet"
    if request.bars is not None:
        what = f"{request.bars} history bars"
    elif request.window_ms is None:
        what = "ticks"
    else:
        what = f"{format_duration(request.window_ms)} aggregates"
    return f"no {what} for {request.target} from {_iso(request.start_ms)} to {_iso(request.end_ms)}"
