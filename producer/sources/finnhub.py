"""Finnhub REST quotes: one request per symbol, the key in a header (never in a URL or a log).

GET {base}/api/v1/quote?symbol=AAPL answers {"c": current, "t": Unix seconds, ...}. Unknown
symbols and some outages answer all zeros: that is no data, not a price of 0. The quote carries no
volume, so ticks from Finnhub have volume 0. The price is passed on as given; the contract judges
it when the tick is published.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from common.contract import Tick, short
from common.settings import Secret
from producer.http_client import HttpClient, SourceError
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

# The free tier allows 60 calls a minute.
CALLS_PER_SECOND = 1.0


class FinnhubSource(PolledSource):
    name = "finnhub"

    def __init__(self, http: HttpClient, base_url: str, api_key: Secret):
        super().__init__(http, base_url)
        self._key = api_key

    def min_interval_s(self, symbol_count: int) -> float:
        return max(1.0, symbol_count / CALLS_PER_SECOND)

    def fetch_request(self, symbols: tuple[str, ...]) -> Iterator[Item]:
        [symbol] = symbols
        headers = {"X-Finnhub-Token": self._key.reveal()}
        try:
            response = self._http.get(
                f"{self._base}/api/v1/quote", params={"symbol": symbol}, headers=headers
            )
        except SourceError as e:
            yield Failed(f"finnhub: {e}", symbols)
            return
        if response.status in (401, 403):
            yield Failed(f"finnhub: HTTP {response.status}: check FINNHUB_API_KEY", symbols)
        elif response.status >= 400:
            yield Failed(f"finnhub: HTTP {response.status} for {symbol}", symbols)
        else:
            yield parse_quote(symbol, response.body)


def parse_quote(symbol: str, body: bytes) -> Item:
    """What a quote answer says about `symbol`; never raises."""
    quote, problem = load_json(body)
    if problem is not None:
        return Rejected(f"finnhub: answer for {symbol} is {problem}", clip(body), symbol)
    if not isinstance(quote, dict) or "c" not in quote or "t" not in quote:
        return Rejected(
            f"finnhub: quote for {symbol} lacks c (price) or t (time)", clip(body), symbol
        )
    price, seconds = quote["c"], quote["t"]
    if price == 0 and seconds == 0:
        return NoData(symbol, "finnhub answered all zeros (unknown symbol or no data)")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return Rejected(
            f"finnhub: t for {symbol} is not a whole number of seconds: {short(seconds)}",
            clip(body),
            symbol,
        )
    return Tick(symbol, price, 0, seconds * 1000, "finnhub")
