"""Yahoo Finance chart API: one request per symbol, last price and its time from `meta`.

GET {base}/v8/finance/chart/{symbol}?range=1d&interval=1m. The price is
`meta.regularMarketPrice` at `meta.regularMarketTime` (Unix seconds); the volume is the one of
the latest 1-minute bar that has one (bars without trades are null). Values are passed on as
Yahoo gave them: the contract judges them when the tick is published (a volume of 10^20 or a
price of NaN goes to the dead-letter topic, not into the pipeline).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from common.contract import Tick, short
from producer.http_client import SourceError
from producer.sources.base import (
    Failed,
    Item,
    NoData,
    PolledSource,
    Rejected,
    clip,
    load_json,
)

logger = logging.getLogger(__name__)


class YahooSource(PolledSource):
    name = "yahoo"

    def min_interval_s(self, symbol_count: int) -> float:
        # An unofficial API that answers heavy use with 429: stay near one request a second.
        return max(2.0, float(symbol_count))

    def fetch_request(self, symbols: tuple[str, ...]) -> Iterator[Item]:
        [symbol] = symbols
        url = f"{self._base}/v8/finance/chart/{quote(symbol, safe='')}"
        try:
            response = self._http.get(url, params={"range": "1d", "interval": "1m"})
        except SourceError as e:
            yield Failed(f"yahoo: {e}", symbols)
            return
        yield parse_chart(symbol, response.status, response.body)


def parse_chart(symbol: str, status: int, body: bytes) -> Item:
    """What a chart answer says about `symbol`; never raises."""
    doc, problem = load_json(body)
    chart = doc.get("chart") if isinstance(doc, dict) else None
    if not isinstance(chart, dict):
        if status >= 400:
            return Failed(f"yahoo: HTTP {status} with a body that is not a chart", (symbol,))
        why = problem or "no chart object"
        return Rejected(f"yahoo: answer for {symbol} is not a chart ({why})", clip(body), symbol)
    error = chart.get("error")
    if error:
        code = error.get("code") if isinstance(error, dict) else error
        if code == "Not Found":
            return Rejected(f"yahoo: unknown symbol {symbol}", clip(body), symbol)
        return Failed(f"yahoo: error {short(code)} for {symbol}", (symbol,))
    if status >= 400:
        return Failed(f"yahoo: HTTP {status} for {symbol}", (symbol,))
    results = chart.get("result")
    result = results[0] if isinstance(results, list) and results else None
    meta = result.get("meta") if isinstance(result, dict) else None
    if not isinstance(meta, dict):
        return Rejected(f"yahoo: chart for {symbol} has no result/meta", clip(body), symbol)
    price = meta.get("regularMarketPrice")
    seconds = meta.get("regularMarketTime")
    if price is None or seconds is None:
        return NoData(symbol, "yahoo has no regular market price yet")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return Rejected(
            f"yahoo: regularMarketTime for {symbol} is not a whole number: {short(seconds)}",
            clip(body),
            symbol,
        )
    return Tick(symbol, price, _last_volume(result), seconds * 1000, "yahoo")


def _last_volume(result: dict[str, Any]) -> Any:
    """The latest non-null bar volume as given (the contract judges it); 0 if there is none."""
    indicators = result.get("indicators")
    quotes = indicators.get("quote") if isinstance(indicators, dict) else None
    first = quotes[0] if isinstance(quotes, list) and quotes else None
    volumes = first.get("volume") if isinstance(first, dict) else None
    if volumes is None:
        return 0
    if not isinstance(volumes, list):
        return volumes  # not a list of bars: refused by the contract with what it was
    return next((v for v in reversed(volumes) if v is not None), 0)
