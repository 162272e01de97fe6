"""Stooq CSV quotes: several symbols per request, no key.

GET {base}/q/l/?s=aapl.us+msft.us&f=sd2t2ohlcv&h&e=csv answers one row per symbol:
`Symbol,Date,Time,Open,High,Low,Close,Volume`. A row of `N/D` means Stooq does not know the
symbol. Date and time are Stooq's server time, Europe/Warsaw (a US close at 16:00 New York shows
as 22:00), which is how they are read here. Numbers are passed on as written (a volume of 1e999
is infinity, NaN is NaN): the contract judges them when the tick is published.

Symbols: a plain US ticker (AAPL) is asked as `aapl.us`; one that already names its market
(BMW.DE) is asked as written, lower-cased.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from common.contract import SYMBOL_PATTERN, Tick, short
from producer.http_client import SourceError
from producer.sources.base import (
    Failed,
    Item,
    PolledSource,
    Rejected,
    clip,
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
        volume = _number(row[7]) if row[7] not in ("", "N/D") else 0
    except (ValueError, OverflowError) as e:
        why = short(str(e))
        return Rejected(f"stooq: the row for {symbol} does not parse ({why})", raw, symbol)
    return Tick(symbol, price, volume, ts, "stooq")


def _number(text: str) -> int | float:
    """A whole number as an int, anything else float() reads as a float (1e999 is inf)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _our_symbol(name: str) -> str | None:
    """Our spelling of a Stooq name (aapl.us -> AAPL), if it is a valid symbol at all."""
    name = name.strip().upper()
    name = name.removesuffix(".US")
    return name if SYMBOL_PATTERN.fullmatch(name) else None
