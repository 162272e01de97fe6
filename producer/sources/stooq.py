"""Stooq CSV quotes: several symbols per request, no key.

GET {base}/q/l/?s=aapl.us+msft.us&f=sd2t2ohlcv&h&e=csv answers one row per symbol:
`Symbol,Date,Time,Open,High,Low,Close,Volume`. A row of `N/D` means Stooq does not know the
symbol. Date and time are Stooq's server time, Europe/Warsaw (a US close at 16:00 New York shows
as 22:00), which is how they are read here.

Symbols: a plain US ticker (AAPL) is asked as `aapl.us`; one that already names its market
(BMW.DE) is asked as written, lower-cased.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from common.contract import Tick
from producer.sources.base import Failed, Item, PolledSource, Rejected, SourceError, clip

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

    def fetch(self, symbols: Sequence[str]) -> Iterator[Item]:
        for start in range(0, len(symbols), SYMBOLS_PER_REQUEST):
            chunk = tuple(symbols[start : start + SYMBOLS_PER_REQUEST])
            names = {stooq_symbol(s): s for s in chunk}
            # Stooq separates symbols with '+', a space in a query string.
            wanted = "+".join(quote(n, safe=".") for n in names)
            url = f"{self._base}/q/l/?s={wanted}&f=sd2t2ohlcv&h&e=csv"
            try:
                response = self._http.get(url)
            except SourceError as e:
                yield Failed(str(e), chunk)
                continue
            if response.status >= 400:
                yield Failed(f"HTTP {response.status} from Stooq", chunk)
                continue
            yield from parse_quotes(response.body, names)


def parse_quotes(body: bytes, names: dict[str, str]) -> Iterator[Item]:
    """Rows of a Stooq CSV answer; `names` maps Stooq's lower-case names to ours."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        yield Rejected("stooq: answer is not UTF-8 text", clip(body))
        return
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != _HEADER:
        # Stooq says "Exceeded the daily hits limit" or serves a page instead of the CSV.
        yield Rejected("stooq: answer is not the quote CSV", clip(body))
        return
    seen: set[str] = set()
    for row in rows[1:]:
        if not row:
            continue
        raw = ",".join(row).encode()
        if len(row) != len(_HEADER):
            yield Rejected(f"stooq: row has {len(row)} fields, expected 8", raw)
            continue
        symbol = names.get(row[0].strip().lower())
        if symbol is None:
            yield Rejected(f"stooq: row for a symbol that was not asked: {row[0]!r}", raw)
            continue
        seen.add(symbol)
        if "N/D" in (row[1], row[6]):
            yield Rejected(f"stooq: unknown symbol {symbol} (N/D)", raw, symbol)
            continue
        try:
            local = datetime.strptime(f"{row[1]} {row[2]}", "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=STOOQ_TIME_ZONE
            )
            ts = int(local.timestamp() * 1000)
            price = float(row[6])
            volume = int(float(row[7])) if row[7] not in ("", "N/D") else 0
        except ValueError as e:
            yield Rejected(f"stooq: row for {symbol} does not parse ({e})", raw, symbol)
            continue
        yield Tick(symbol, price, volume, ts, "stooq")
    for symbol in names.values():
        if symbol not in seen:
            yield Failed(f"stooq: the answer has no row for {symbol}", (symbol,))
