"""A local stand-in for the sources' history endpoints, in their real formats (see
../shared/SOURCES.md): Yahoo's chart API answering `period1`/`period2` (or `range`) and
`interval`, and Stooq's daily history CSV. It makes up a deterministic market for any symbol:
US sessions (Monday to Friday, 13:30 to 20:00 UTC: 390 one-minute bars a day), a price path
seeded by the symbol, and a `null` bar (no trade) every 97th minute, as Yahoo's arrays have.

What the tests, the benchmark and an offline `make local` point YAHOO_BASE_URL and
STOOQ_BASE_URL at. Some symbols answer as the real services do when things go wrong:
- NODATA: a chart with meta and no bars (Yahoo's answer for a range without trades);
- ZZZZ: Yahoo's "Not Found" error (404), Stooq's "No data";
- hostile ones (see HOSTILE): a page that is not JSON, arrays of different lengths, prices that
  break the contract, 429 with Retry-After before the answer, a body far over any limit.
"""

from __future__ import annotations

import json
import math
import threading
import time
import zlib
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

DAY_S = 86_400
SESSION_OPEN_S = 13 * 3600 + 30 * 60  # 09:30 New York in winter
SESSION_MINUTES = 390
NO_TRADE_EVERY = 97
NODATA = "NODATA"
UNKNOWN = "ZZZZ"
# symbol -> what its answer does wrong
HOSTILE = {
    "GARBAGE": "an HTML page instead of the chart",
    "RAGGED": "arrays of different lengths",
    "BADPRICE": "negative and NaN prices, high below low",
    "THROTTLED": "429 with Retry-After: 1 twice, then the chart",
    "HUGE": "a 5 MB body (over the client's 4 MiB limit)",
}
_RANGES = {"1d": 1, "5d": 5, "1mo": 31, "3mo": 92, "6mo": 183, "1y": 366, "2y": 731, "5y": 1827}


def _level(symbol: str) -> float:
    return 20.0 + zlib.crc32(symbol.encode()) % 480


def price_at(symbol: str, seconds: int) -> float:
    """The stand-in market's price of `symbol` at a time (Unix seconds)."""
    phase = zlib.crc32(symbol.encode()) % 1000 / 159.0
    wave = 0.04 * math.sin(seconds / 86_400 / 3.0 + phase) + 0.006 * math.sin(seconds / 600 + phase)
    return round(_level(symbol) * math.exp(wave), 2)


def session_minutes(start_s: int, end_s: int, always_open: bool = False) -> list[int]:
    """Unix seconds of each 1-minute bar of a session in [start_s, end_s); `always_open`: a
    market that trades every minute of every day (a crypto market)."""
    if always_open:
        return list(range(-(-start_s // 60) * 60, end_s, 60))
    found = []
    day = start_s // DAY_S * DAY_S
    while day < end_s:
        if datetime.fromtimestamp(day, UTC).weekday() < 5:
            opens = day + SESSION_OPEN_S
            for m in range(SESSION_MINUTES):
                t = opens + 60 * m
                if start_s <= t < end_s:
                    found.append(t)
        day += DAY_S
    return found


def bars(
    symbol: str, interval: str, start_s: int, end_s: int, always_open: bool = False
) -> list[tuple]:
    """(seconds, open, high, low, close, volume) per bar; None values for a bar without trades."""
    minutes = session_minutes(start_s - start_s % DAY_S, end_s, always_open)
    step = {"1m": 60, "5m": 300, "1d": DAY_S}[interval]
    groups: dict[int, list[int]] = {}
    for t in minutes:
        opens = 0 if always_open else SESSION_OPEN_S
        key = t - (t - opens) % DAY_S if step == DAY_S else t - t % step
        groups.setdefault(key, []).append(t)
    out = []
    for key, ts in groups.items():
        if not start_s <= key < end_s:
            continue
        if step == 60 and (key // 60) % NO_TRADE_EVERY == 0:
            out.append((key, None, None, None, None, None))
            continue
        prices = [price_at(symbol, t) for t in (*ts, ts[-1] + 60)]
        volume = sum(1000 + zlib.crc32(f"{symbol}{t}".encode()) % 9000 for t in ts)
        out.append((key, prices[0], max(prices), min(prices), prices[-1], volume))
    return out


def yahoo_answer(
    symbol: str, query: dict[str, list[str]], now_s: int, always_open: bool = False
) -> tuple[int, bytes]:
    interval = query.get("interval", ["1m"])[0]
    if "period1" in query:
        start_s, end_s = int(query["period1"][0]), int(query["period2"][0])
    else:
        days = _RANGES.get(query.get("range", ["1d"])[0], 1)
        start_s, end_s = now_s - days * DAY_S, now_s
    if symbol == UNKNOWN:
        error = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
        return 404, json.dumps({"chart": {"result": None, "error": error}}).encode()
    if symbol == "GARBAGE":
        return 200, b"<html><body>Will be right back...</body></html>"
    if symbol == "HUGE":
        return 200, b'{"chart":{"result":[' + b" " * 5_000_000 + b"]}}"
    rows = [] if symbol == NODATA else bars(symbol, interval, start_s, end_s, always_open)
    columns = {k: [r[i + 1] for r in rows] for i, k in enumerate(("open", "high", "low",
                                                                   "close", "volume"))}  # fmt: skip
    if symbol == "RAGGED":
        columns["close"] = columns["close"][:-3]
    traded = [i for i, r in enumerate(rows) if r[1] is not None]
    if symbol == "BADPRICE" and len(traded) > 3:
        columns["open"][traded[0]] = -5.0
        columns["close"][traded[1]] = float("nan")
        columns["high"][traded[2]], columns["low"][traded[2]] = 1.0, 2.0
    meta = {
        "currency": "USD", "symbol": symbol, "exchangeName": "NMS", "instrumentType": "EQUITY",
        "regularMarketPrice": price_at(symbol, now_s), "regularMarketTime": now_s,
        "gmtoffset": -18000, "timezone": "EST", "exchangeTimezoneName": "America/New_York",
        "dataGranularity": interval,
    }  # fmt: skip
    result: dict = {"meta": meta}
    if rows:
        result["timestamp"] = [r[0] for r in rows]
        result["indicators"] = {"quote": [columns]}
    else:
        result["indicators"] = {"quote": [{}]}
    # json.dumps writes NaN as the bare NaN that Yahoo's own answers have been seen to carry.
    return 200, json.dumps({"chart": {"result": [result], "error": None}}).encode()


def stooq_answer(name: str, query: dict[str, list[str]], now_s: int) -> tuple[int, bytes]:
    symbol = name.upper().removesuffix(".US")
    if symbol in (UNKNOWN, NODATA):
        return 200, b"No data"

    def day(text: str, default: int) -> int:
        try:
            return int(datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC).timestamp())
        except ValueError:
            return default

    start_s = day(query.get("d1", [""])[0], now_s - 366 * DAY_S)
    end_s = day(query.get("d2", [""])[0], now_s) + DAY_S
    lines = ["Date,Open,High,Low,Close,Volume"]
    for t, o, h, lo, c, v in bars(symbol, "1d", start_s, end_s):
        if o is not None:
            lines.append(f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d},{o},{h},{lo},{c},{v}")
    return 200, ("\r\n".join(lines) + "\r\n").encode()


class HistoryStandIn:
    """The stand-in on 127.0.0.1 (a free port unless given), until stop()."""

    def __init__(self, port: int = 0, clock=None, always_open: bool = False):
        self._clock = clock or time.time
        self.always_open = always_open
        self.requests: Counter[str] = Counter()
        # symbol -> each history request's (interval, period1, period2), Unix seconds
        self.asked: dict[str, list[tuple[str, int, int]]] = {}
        self._throttled: Counter[str] = Counter()
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, body, headers = stand_in.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except ConnectionError:
                    pass  # the client left early (a body over its limit): its choice

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(path)
        query = parse_qs(parts.query)
        now_s = int(self._clock())
        if parts.path.startswith("/v8/finance/chart/"):
            symbol = unquote(parts.path.rsplit("/", 1)[1])
            with self._lock:
                self.requests[symbol] += 1
                if "period1" in query:
                    self.asked.setdefault(symbol, []).append((
                        query.get("interval", ["1m"])[0], int(query["period1"][0]),
                        int(query["period2"][0])))  # fmt: skip
                if symbol == "THROTTLED" and self._throttled[symbol] < 2:
                    self._throttled[symbol] += 1
                    return 429, b"Too Many Requests", {"Retry-After": "1"}
            status, body = yahoo_answer(symbol, query, now_s, self.always_open)
            return status, body, {"Content-Type": "application/json"}
        if parts.path == "/q/d/l/":
            name = query.get("s", [""])[0]
            with self._lock:
                self.requests[name] += 1
            status, body = stooq_answer(name, query, now_s)
            return status, body, {"Content-Type": "text/csv"}
        return 404, b"no such page", {}

    def bars_asked(self, symbol: str, interval: str = "1m") -> dict[int, tuple]:
        """The bars with trades of every `interval` history request for `symbol` so far, by
        start (epoch ms, as the contract has it): what a backfill should have stored."""
        out = {}
        for asked, start_s, end_s in self.asked.get(symbol, ()):
            if asked != interval:
                continue
            for t, o, h, lo, c, v in bars(symbol, interval, start_s, end_s, self.always_open):
                if o is not None:
                    if interval == "1d":  # dated in New York (gmtoffset), as the parser does
                        t = t if self.always_open else (t - 18000) // DAY_S * DAY_S
                    start = t * 1000
                    out[start] = (o, h, lo, c, v)
        return out

    def start(self) -> HistoryStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
