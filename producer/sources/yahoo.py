"""Yahoo Finance chart API: one request per symbol, last price and its time from `meta`.

GET {base}/v8/finance/chart/{symbol}?range=1d&interval=1m. The price is
`meta.regularMarketPrice` at `meta.regularMarketTime` (Unix seconds); the volume is the one of
the latest 1-minute bar that has one (bars without trades are null).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from common.contract import Tick
from producer.sources.base import Failed, Item, NoData, PolledSource, Rejected, SourceError, clip

logger = logging.getLogger(__name__)


class YahooSource(PolledSource):
    name = "yahoo"

    def min_interval_s(self, symbol_count: int) -> float:
        # An unofficial API that answers heavy use with 429: stay near one request a second.
        return max(2.0, float(symbol_count))

    def fetch(self, symbols: Sequence[str]) -> Iterator[Item]:
        for symbol in symbols:
            url = f"{self._base}/v8/finance/chart/{quote(symbol, safe='')}"
            try:
                response = self._http.get(url, params={"range": "1d", "interval": "1m"})
            except SourceError as e:
                yield Failed(str(e), (symbol,))
                continue
            yield parse_chart(symbol, response.status, response.body)


def parse_chart(symbol: str, status: int, body: bytes) -> Item:
    try:
        doc = json.loads(body)
        chart = doc["chart"]
    except (ValueError, TypeError, KeyError) as e:
        if status >= 400:
            return Failed(f"HTTP {status} from Yahoo with a body that is not a chart", (symbol,))
        return Rejected(f"yahoo: body is not a chart response ({type(e).__name__})", clip(body))
    error = chart.get("error") if isinstance(chart, dict) else None
    if error:
        code = error.get("code") if isinstance(error, dict) else str(error)
        if code == "Not Found":
            return Rejected(f"yahoo: unknown symbol {symbol}", clip(body), symbol)
        return Failed(f"yahoo error {code!r} for {symbol}", (symbol,))
    if status >= 400:
        return Failed(f"HTTP {status} from Yahoo", (symbol,))
    try:
        result = chart["result"][0]
        meta = result["meta"]
        price = meta.get("regularMarketPrice")
        seconds = meta.get("regularMarketTime")
    except (TypeError, KeyError, IndexError):
        return Rejected(f"yahoo: chart for {symbol} has no result/meta", clip(body), symbol)
    if price is None or seconds is None:
        return NoData(symbol, "yahoo has no regular market price yet")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return Rejected("yahoo: regularMarketTime is not a whole number", clip(body), symbol)
    return Tick(symbol, price, _last_volume(result), seconds * 1000, "yahoo")


def _last_volume(result: dict[str, Any]) -> int:
    try:
        volumes = result["indicators"]["quote"][0]["volume"]
    except (TypeError, KeyError, IndexError):
        return 0
    for v in reversed(volumes or []):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
            return int(v)
    return 0
