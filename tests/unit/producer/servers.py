"""Local stand-ins for the internet price sources: real HTTP on loopback, their real formats.

A `SourceServer` answers each request from a queue of scripted `Answer`s per path (the last one
repeats), so a test can script "429 with Retry-After, then 200" or "hang past the timeout".
It records every request (path, query, headers) for the assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    at: float


class SourceServer:
    def __init__(self) -> None:
        self._scripts: dict[str, list[Answer]] = defaultdict(list)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                with server._lock:
                    server.requests.append(
                        Request(
                            parts.path,
                            parse_qs(parts.query, keep_blank_values=True),
                            parts.query,
                            dict(self.headers),
                            time.monotonic(),
                        )
                    )
                    script = server._scripts.get(parts.path)
                    if not script:
                        answer = Answer(404, b"no route")
                    elif len(script) > 1:
                        answer = script.pop(0)
                    else:
                        answer = script[0]
                if answer.delay_s:
                    time.sleep(answer.delay_s)  # stands in for a slow source, not for readiness
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, path: str, *answers: Answer) -> None:
        with self._lock:
            self._scripts[path] = list(answers)

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> SourceServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- the sources' real formats (see ../shared/SOURCES.md) -----------------------------------


def yahoo_chart(
    symbol: str, price: float | None, seconds: int | None, volumes=(512300, None)
) -> bytes:
    return json.dumps(
        {
            "chart": {
                "result": [
                    {
                        "meta": {
                            "currency": "USD",
                            "symbol": symbol,
                            "exchangeName": "NMS",
                            "instrumentType": "EQUITY",
                            "regularMarketPrice": price,
                            "regularMarketTime": seconds,
                            "chartPreviousClose": 229.31,
                            "exchangeTimezoneName": "America/New_York",
                            "dataGranularity": "1m",
                            "range": "1d",
                        },
                        "timestamp": [1724765400, 1724765460],
                        "indicators": {
                            "quote": [
                                {
                                    "open": [228.6, 229.0],
                                    "high": [229.1, 229.4],
                                    "low": [228.3, 228.9],
                                    "close": [229.0, None],
                                    "volume": list(volumes),
                                }
                            ]
                        },
                    }
                ],
                "error": None,
            }
        }
    ).encode()


YAHOO_NOT_FOUND = json.dumps(
    {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }
).encode()


def stooq_csv(*rows: str) -> bytes:
    return (
        "Symbol,Date,Time,Open,High,Low,Close,Volume\r\n" + "".join(r + "\r\n" for r in rows)
    ).encode()


def finnhub_quote(c: float, t: int) -> bytes:
    return json.dumps(
        {"c": c, "d": 2.29, "dp": 0.88, "h": 263.31, "l": 260.68, "o": 261.07, "pc": 259.45, "t": t}
    ).encode()


FINNHUB_ZEROS = json.dumps(
    {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
).encode()
