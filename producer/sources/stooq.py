"""Stooq CSV quotes: several symbols per request, no key.

GET {base}/q/l/?s=aapl.us+msft.us&f=sd2t2ohlcv&h&e=csv answers one row per symbol:
`Symbol,Date,Time,Open,High,Low,Close,Volume`. A row of `N/D` means Stooq does not know the
symbol. Date and time are Stooq's server time, Europe/Warsaw (a US close at 16:00 New York shows
as 22:00), which is how they are read here. Numbers are passed on as written (a volume of 1e999
is infinity, NaN is NaN): the contract judges them when the tick is published.

History: GET {base}/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD answers daily bars as
`Date,Open,High,Low,Close,Volume` (Volume absent for some indices), oldest first; a symbol Stooq
does not know answers `No data`. Each bar starts at 00:00 UTC of its trading date (the contract).

Symbols: a plain US ticker (AAPL) is asked as `aapl.us`; one that already names its market
(BMW.DE) is asked as written, lower-cased.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from common.contract import SYMBOL_PATTERN, Bar, Tick, short
from producer.http_client import SourceError
from producer.sources.base import (
    DAY_MS,
    BarItem,
    BarLimit,
    Failed,
    Item,
    NoData,
    PolledSource,
    Rejected,
    clip,
    number,
)

logger = logging.getLogger(__name__)

STOOQ_TIME_ZONE = ZoneInfo("Europe/Warsaw")
# Keeps each request's URL short; Stooq answers many symbols per request.
SYMBOLS_PER_REQUEST = 20
_HEADER = ["symbol", "date", "time", "open", "high", "low", "close", "volume"]


def stooq_symbol(symbol: str) -> str:
    return symbol.lower() if "." in symbol else f"{symbol.lower()}.us"


class StooqSource(PolledSource):
    name = "stooq"
    BAR_LIMITS = {"1d": BarLimit(span_ms=50 * 366 * DAY_MS)}  # noqa: RUF012 - read only

    def min_interval_s(self, symbol_count: int) -> float:
        requests_per_round = -(-symbol_count // SYMBOLS_PER_REQUEST)
        return max(5.0, 2.0 * requests_per_round)

    def requests_for(self, symbols):
        for start in range(0, len(symbols), SYMBOLS_PER_REQUEST):
            yield tuple(symbols[start : start + SYMBOLS_PER_REQUEST])

    def fetch_request(self, symbols: tuple[str, ...]) -> Iterator[Item]:
        names = {stooq_symbol(s): s for s in symbols}
        # Stooq separates symbols with '+', a space in a query string.
        wanted = "+".join(quote(n, safe=".") for n in names)
        url = f"{self._base}/q/l/?s={wanted}&f=sd2t2ohlcv&h&e=csv"
        try:
            response = self._http.get(url)
        except SourceError as e:
            yield Failed(f"stooq: {e}", symbols)
            return
        if response.status >= 400:
            yield Failed(f"stooq: HTTP {response.status}", symbols)
            return
        yield from parse_quotes(response.body, names)

    def fetch_bars(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[BarItem]:
        first = _day(start_ms).strftime("%Y%m%d")
        last = _day(max(start_ms, end_ms - 1)).strftime("%Y%m%d")
        name = quote(stooq_symbol(symbol), safe=".")
        url = f"{self._base}/q/d/l/?s={name}&i=d&d1={first}&d2={last}"
        try:
            response = self._http.get(url)
        except SourceError as e:
            yield Failed(f"stooq: {e}", (symbol,))
            return
        if response.status >= 400:
            yield Failed(f"stooq: HTTP {response.status} for the history of {symbol}", (symbol,))
            return
        yield from parse_history(symbol, response.body)


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def parse_history(symbol: str, body: bytes) -> Iterator[BarItem]:
    """The daily bars of a Stooq history CSV (unvalidated), or why there are none; never raises."""
    if body.strip().lower() == b"no data":
        yield NoData(symbol, f"stooq has no daily bars for {symbol} in that range")
        return
    try:
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as e:
        yield Rejected(f"stooq: the history of {symbol} is not CSV text ({type(e).__name__})",
                       clip(body), symbol)  # fmt: skip
        return
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if header[:5] != _HISTORY_HEADER[:5] or len(header) > len(_HISTORY_HEADER):
        yield Rejected(f"stooq: the history of {symbol} is not the daily CSV", clip(body), symbol)
        return
    for row in rows[1:]:
        if not row:
            continue
        raw = clip(",".join(row).encode("utf-8", "surrogateescape"))
        if len(row) != len(header):
            yield Rejected(f"stooq: a history row of {symbol} has {len(row)} fields, "
                           f"not {len(header)}", raw, symbol)  # fmt: skip
            continue
        try:
            day = date.fromisoformat(row[0].strip())
            start = (day - _EPOCH).days * DAY_MS
            open_, high, low, close = (number(v) for v in row[1:5])
            volume = number(row[5]) if len(row) > 5 and row[5].strip() else 0
        except (ValueError, OverflowError) as e:
            why = short(str(e))
            yield Rejected(f"stooq: a history row of {symbol} does not parse ({why})", raw, symbol)
            continue
        yield Bar(symbol, "1d", start, open_, high, low, close, volume, "stooq")


_HISTORY_HEADER = ["date", "open", "high", "low", "close", "volume"]
_EPOCH = date(1970, 1, 1)


def parse_quotes(body: bytes, names: dict[str, str]) -> Iterator[Item]:
    """Rows of a Stooq CSV answer; `names` maps Stooq's lower-case names to ours. Never raises.

    An answer that is not the CSV is refused once for each symbol it was asked for, so that each
    dead letter names its symbol.
    """
    try:
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
        problem = None
    except UnicodeDecodeError:
        rows, problem = [], "not UTF-8 text"
    except csv.Error as e:
        rows, problem = [], f"not readable as CSV ({short(str(e))})"
    if problem is None and (not rows or [c.strip().lower() for c in rows[0]] != _HEADER):
        # Stooq says "Exceeded the daily hits limit" or serves a page instead of the CSV.
        problem = "not the quote CSV"
    if problem is not None:
        for symbol in names.values():
            yield Rejected(f"stooq: the answer for {symbol} is {problem}", clip(body), symbol)
        return
    seen: set[str] = set()
    for row in rows[1:]:
        if not row:
            continue
        raw = clip(",".join(row).encode("utf-8", "surrogateescape"))
        symbol = names.get(row[0].strip().lower())
        if symbol is None:
            yield Rejected(
                f"stooq: a row for {short(row[0])}, which was not asked "
                f"(asked: {', '.join(names.values())})",
                raw,
                _our_symbol(row[0]),
            )
            continue
        if symbol in seen:
            yield Rejected(f"stooq: a second row for {symbol} in one answer", raw, symbol)
            continue
        seen.add(symbol)
        yield _row(symbol, row, raw)
    for symbol in names.values():
        if symbol not in seen:
            yield Failed(f"stooq: the answer has no row for {symbol}", (symbol,))


def _row(symbol: str, row: list[str], raw: bytes) -> Item:
    if len(row) != len(_HEADER):
        return Rejected(f"stooq: the row for {symbol} has {len(row)} fields, not 8", raw, symbol)
    if "N/D" in (row[1], row[6]):
        return Rejected(f"stooq: unknown symbol {symbol} (N/D)", raw, symbol)
    try:
        local = datetime.strptime(f"{row[1]} {row[2]}", "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=STOOQ_TIME_ZONE
        )
        ts = int(local.timestamp() * 1000)
        price = float(row[6])
        volume = number(row[7]) if row[7] not in ("", "N/D") else 0
    except (ValueError, OverflowError) as e:
        why = short(str(e))
        return Rejected(f"stooq: the row for {symbol} does not parse ({why})", raw, symbol)
    return Tick(symbol, price, volume, ts, "stooq")


def _our_symbol(name: str) -> str | None:
    """Our spelling of a Stooq name (aapl.us -> AAPL), if it is a valid symbol at all."""
    name = name.strip().upper()
    name = name.removesuffix(".US")
    return name if SYMBOL_PATTERN.fullmatch(name) else None
