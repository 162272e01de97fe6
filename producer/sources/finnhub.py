"""Finnhub REST quotes: one request per symbol, the key in a header (never in a URL or a log).

GET {base}/api/v1/quote?symbol=AAPL answers {"c": current, "t": Unix seconds, ...}. Unknown
symbols and some outages answer all zeros: that is no data, not a price of 0. The quote carries no
volume, so ticks from Finnhub have volume 0.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence

from common.contract import Tick
from producer.http_client import HttpClient
from producer.settings import Secret
from producer.sources.base import Failed, Item, NoData, PolledSource, Rejected, SourceError, clip

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

    def fetch(self, symbols: Sequence[str]) -> Iterator[Item]:
        headers = {"X-Finnhub-Token": self._key.reveal()}
        for symbol in symbols:
            try:
                response = self._http.get(
                    f"{self._base}/api/v1/quote", params={"symbol": symbol}, headers=headers
                )
            except SourceError as e:
                yield Failed(str(e), (symbol,))
                continue
            if response.status in (401, 403):
                yield Failed(
                    f"HTTP {response.status} from Finnhub: check FINNHUB_API_KEY", (symbol,)
                )
                continue
            if response.status >= 400:
                yield Failed(f"HTTP {response.status} from Finnhub", (symbol,))
                continue
            yield parse_quote(symbol, response.body)


def parse_quote(symbol: str, body: bytes) -> Item:
    try:
        quote = json.loads(body)
    except ValueError:
        return Rejected("finnhub: body is not JSON", clip(body), symbol)
    if not isinstance(quote, dict) or "c" not in quote or "t" not in quote:
        return Rejected("finnhub: quote lacks c (price) or t (time)", clip(body), symbol)
    price, seconds = quote["c"], quote["t"]
    if not price and not seconds:
        return NoData(symbol, "finnhub answered all zeros (unknown symbol or no data)")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return Rejected("finnhub: t is not a whole number of seconds", clip(body), symbol)
    return Tick(symbol, price, 0, seconds * 1000, "finnhub")
