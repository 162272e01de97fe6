"""Yahoo Finance chart API: one request per symbol, last price and its time from `meta`.

GET {base}/v8/finance/chart/{symbol}?range=1d&interval=1m. The price is
`meta.regularMarketPrice` at `meta.regularMarketTime` (Unix seconds); the volume is the one of
the latest 1-minute bar that has one (bars without trades are null). Values are passed on as
Yahoo gave them: the contract judges them when the tick is published (a volume of 10^20 or a
price of NaN goes to the dead-letter topic, not into the pipeline).

History: the same endpoint with `interval` and `period1`/`period2` (Unix seconds) answers bars
as parallel arrays under `timestamp` and `indicators.quote[0]`; a bar with a `null` price had
no trade and is left out (a hole, as on Yahoo's own chart). Yahoo keeps 1-minute bars for 30
days and serves at most 7 days of them per request, 5-minute bars for 60 days, daily bars for
decades. A daily bar's timestamp is the session's open; its date is taken in the exchange's
time zone (`meta.gmtoffset`), and the bar starts at 00:00 UTC of that date (the contract).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from common.contract import BAR_INTERVALS, Bar, Tick, short
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
    load_json,
)

logger = logging.getLogger(__name__)


class YahooSource(PolledSource):
    name = "yahoo"
    BAR_LIMITS = {  # noqa: RUF012 - a class constant, read only
        "1m": BarLimit(span_ms=7 * DAY_MS, reach_ms=30 * DAY_MS),
        "5m": BarLimit(span_ms=60 * DAY_MS, reach_ms=60 * DAY_MS),
        "1d": BarLimit(span_ms=10 * 366 * DAY_MS),
    }

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

    def fetch_bars(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[BarItem]:
        url = f"{self._base}/v8/finance/chart/{quote(symbol, safe='')}"
        params = {
            "period1": str(start_ms // 1000),
            "period2": str(-(-end_ms // 1000)),
            "interval": interval,
        }
        try:
            response = self._http.get(url, params=params)
        except SourceError as e:
            yield Failed(f"yahoo: {e}", (symbol,))
            return
        yield from parse_bars(symbol, interval, response.status, response.body)


def parse_bars(symbol: str, interval: str, status: int, body: bytes) -> Iterator[BarItem]:
    """The bars of a chart answer (unvalidated), or why there are none; never raises."""
    doc, problem = load_json(body)
    outcome = parse_chart(symbol, status, body, (doc, problem))
    if isinstance(outcome, (Failed, Rejected)):
        yield outcome
        return
    result = doc["chart"]["result"][0]  # parse_chart checked the path down to meta
    times = result.get("timestamp")
    if times is None or times == []:
        yield NoData(symbol, f"yahoo has no {interval} bars for {symbol} in that range")
        return
    indicators = result.get("indicators")
    quotes = indicators.get("quote") if isinstance(indicators, dict) else None
    quote_ = quotes[0] if isinstance(quotes, list) and quotes else None
    columns = [quote_.get(k) if isinstance(quote_, dict) else None for k in _BAR_COLUMNS]
    if not isinstance(times, list) or not all(isinstance(c, list) for c in columns):
        yield Rejected(f"yahoo: bars for {symbol} are not arrays", clip(body), symbol)
        return
    lengths = {len(times), *(len(c) for c in columns)}
    if len(lengths) > 1:
        # Which price belongs to which time is then anyone's guess: none is taken.
        yield Rejected(f"yahoo: the bar arrays of {symbol} have different lengths "
                       f"{sorted(lengths)}", clip(body), symbol)  # fmt: skip
        return
    offset = result["meta"].get("gmtoffset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) > DAY_MS // 1000:
        offset = 0
    step = BAR_INTERVALS[interval]
    for seconds, *values in zip(times, *columns, strict=True):
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            yield Rejected(f"yahoo: a bar time of {symbol} is not whole seconds: "
                           f"{short(seconds)}", clip(body), symbol)  # fmt: skip
            return
        open_, high, low, close, volume = values
        if None in (open_, high, low, close):
            continue  # no trade in this bar
        if step == DAY_MS:
            start = (seconds + offset) // 86_400 * DAY_MS
        else:
            start = seconds * 1000 - seconds * 1000 % step
        yield Bar(symbol, interval, start, open_, high, low, close,
                  0 if volume is None else volume, "yahoo")  # fmt: skip


_BAR_COLUMNS = ("open", "high", "low", "close", "volume")


def parse_chart(
    symbol: str, status: int, body: bytes, loaded: tuple[object, str | None] | None = None
) -> Item:
    """What a chart answer says about `symbol`; never raises. `loaded`: the body's load_json,
    when the caller has it already (a history answer is large)."""
    doc, problem = load_json(body) if loaded is None else loaded
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
