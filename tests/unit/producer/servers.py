"""Local stand-ins for the internet price sources: real HTTP on loopback, their real formats.

A `SourceServer` answers each request from a queue of scripted `Answer`s per path (the last one
repeats), so a test can script "429 with Retry-After, then 200", "hang past the timeout" or
"trickle the answer a byte at a time". It records every request (path, query, headers) and what
became of its answer (bytes sent, whether the client left before the end) for the assertions.
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
    # Seconds between single bytes: of the body, or of the whole answer (status line and
    # headers too) with trickle_head. `endless` trickles a body that never ends.
    trickle_s: float = 0.0
    trickle_head: bool = False
    endless: bool = False


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    at: float
    sent: int = 0  # bytes of the answer written so far
    started: threading.Event = field(default_factory=threading.Event)  # first byte written
    client_left: threading.Event = field(default_factory=threading.Event)  # hung up early


class SourceServer:
    def __init__(self) -> None:
        self._scripts: dict[str, list[Answer]] = defaultdict(list)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                request = Request(
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    parts.query,
                    dict(self.headers),
                    time.monotonic(),
                )
                with server._lock:
                    server.requests.append(request)
                    server._arrived.notify_all()
                    script = server._scripts.get(parts.path)
                    if not script:
                        answer = Answer(404, b"no route")
                    elif len(script) > 1:
                        answer = script.pop(0)
                    else:
                        answer = script[0]
                if answer.delay_s:
                    # Stands in for a slow source, not for readiness; ends when the server stops.
                    server._closing.wait(answer.delay_s)
                head = [f"HTTP/1.1 {answer.status} Scripted\r\n"]
                head += [f"{k}: {v}\r\n" for k, v in answer.headers.items()]
                # An endless body has no length: it would end when the connection closes.
                length = "" if answer.endless else f"Content-Length: {len(answer.body)}\r\n"
                head.append(f"{length}Connection: close\r\n\r\n")
                try:
                    self._write("".join(head).encode(), answer.trickle_s if answer.trickle_head
                                else 0.0, request)  # fmt: skip
                    if answer.endless:
                        while not server._closing.is_set():
                            self._write(b" ", answer.trickle_s or 0.01, request)
                    else:
                        self._write(answer.body, answer.trickle_s, request)
                except (BrokenPipeError, ConnectionResetError):
                    request.client_left.set()  # the client gave up (deadline and stop tests)
                self.close_connection = True

            def _write(self, data: bytes, pause_s: float, request: Request) -> None:
                if not pause_s:
                    self.wfile.write(data)
                    self.wfile.flush()
                    request.sent += len(data)
                    request.started.set()
                    return
                for i in range(len(data)):
                    if server._closing.is_set():
                        return
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    request.sent += 1
                    request.started.set()
                    server._closing.wait(pause_s)

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

    def wait_for_request(self, path: str, timeout_s: float = 30.0) -> Request:
        """The first request to `path`, once it has arrived."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                found = [r for r in self.requests if r.path == path]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no request to {path} within {timeout_s}s")
                self._arrived.wait(left)

    def start(self) -> SourceServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
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
