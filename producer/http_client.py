"""HTTP for the polled sources: one session, a deadline per request, bounded retries, cool-downs.

Each attempt has one total deadline (`timeout_s`) from the moment it starts to the last byte of
the body, not only a limit on each read: an answer that trickles a byte a second is abandoned at
the deadline, so one slow symbol costs a round at most that long. A watchdog beside each attempt
shuts the connection's socket when the deadline passes or the stop flag is set, which ends a
blocked read at once wherever it is (connecting, the status line, the headers, the body); the
body is read in small pieces with the same checks, and an answer larger than `max_body_bytes` is
refused.

Retried: 429, 5xx and connections that failed, with exponential backoff and full jitter. An
attempt that used up its deadline is not retried in the same round (the next round asks again),
and neither is an oversized answer. A Retry-After longer than the longest backoff is not slept
through: the host cools down until then, and requests to it fail fast, so one throttled source
never holds up shutdown or hammers the API. Error texts never include the URL's query or the
headers, where keys live.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from common.polling import Backoff

logger = logging.getLogger(__name__)


class SourceError(Exception):
    """A request to a source failed; the message says why, without secrets."""


# Yahoo refuses clients that do not look like a browser; the others do not mind.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A Yahoo day chart is ~50 KB and a Stooq or Finnhub answer far less; 4 MiB is no real answer.
MAX_BODY_BYTES = 4 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024
# A Retry-After is honoured up to an hour: a host cannot switch a source off for good.
MAX_RETRY_AFTER_S = 3600.0
# How often the watchdog looks at the clock and the stop flag: bounds how late it acts.
_WATCH_TICK_S = 0.05


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    url: str  # without the query string


@dataclass(frozen=True)
class _Failure:
    reason: str
    retry: bool
    retry_after: float | None = None


class _Watch:
    """One attempt's deadline and the stop flag, enforced on the attempt's connection."""

    def __init__(self, stop: threading.Event, deadline: float, clock: Callable[[], float]):
        self._stop = stop
        self._deadline = deadline
        self._clock = clock
        self._done = threading.Event()
        self.connection: Any = None  # set by the connection when it starts to talk
        self.reason: str | None = None  # "deadline" or "stopped" once the watchdog acted

    def check(self) -> str | None:
        if self.reason is None:
            if self._stop.is_set():
                self.reason = "stopped"
            elif self._clock() >= self._deadline:
                self.reason = "deadline"
        return self.reason

    def run(self) -> None:
        while not self._done.wait(_WATCH_TICK_S):
            if self.check() is not None and self._shut():
                return

    def _shut(self) -> bool:
        # shutdown() (unlike close()) wakes a recv blocked in another thread at once.
        sock = getattr(self.connection, "sock", None)
        if sock is None:
            return False  # not connected yet: the connect timeout bounds that part
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return True

    def __enter__(self) -> _Watch:
        _attempt_watch.watch = self
        threading.Thread(target=self.run, name="http-deadline", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        _attempt_watch.watch = None
        self._done.set()


# The watch of the attempt running on this thread, found by the connection that serves it.
_attempt_watch = threading.local()


def _register(connection: HTTPConnection) -> None:
    watch = getattr(_attempt_watch, "watch", None)
    if watch is not None:
        watch.connection = connection


class _Registered:
    """Registers the connection with the attempt's watch before it connects or sends."""

    def connect(self) -> None:
        _register(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A kept-alive connection is reused without connect(): register it per request too.
        _register(self)
        super().request(*args, **kwargs)


class _WatchedHTTPConnection(_Registered, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Registered, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with connections the attempt's watchdog can find and cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS brings its own connection classes
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


class HttpClient:
    def __init__(
        self,
        stop: threading.Event,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ):
        self._stop = stop
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._max_body = max_body_bytes
        self._clock = clock
        # Waits between retries; returns True when stopped. Tests pass one that only records.
        self._wait = stop.wait if wait is None else wait
        self._cool_until: dict[str, float] = {}
        self._session = requests.Session()
        adapter = _WatchedAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "*/*"})

    def close(self) -> None:
        self._session.close()

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The answer to GET url; 2xx and 4xx other than 429 are returned for the parser to judge.

        Raises SourceError when no usable answer came after the retries, when an attempt ran out
        its deadline, and at once when the stop flag is set.
        """
        parts = urlsplit(url)
        host, shown = parts.netloc, f"{parts.scheme}://{parts.netloc}{parts.path}"
        wait = self._cool_until.get(host, 0.0) - self._clock()
        if wait > 0:
            raise SourceError(f"{host} asked us to wait; {wait:.0f}s of its Retry-After left")
        attempt = 0
        backoff = Backoff(self._backoff, self._max_backoff, jitter=True)
        while True:
            if self._stop.is_set():
                raise SourceError(f"stopped before asking {shown}")
            outcome = self._attempt(url, params, headers, shown)
            if isinstance(outcome, Response):
                return outcome
            if not outcome.retry:
                raise SourceError(f"{outcome.reason} from {shown}")
            if attempt >= self._retries:
                raise SourceError(f"{outcome.reason} from {shown}, after {attempt + 1} attempts")
            delay = backoff.next()
            retry_after = outcome.retry_after
            if retry_after is not None:
                if retry_after > self._max_backoff:
                    self._cool_until[host] = self._clock() + retry_after
                    raise SourceError(
                        f"{outcome.reason} from {shown} with Retry-After {retry_after:.0f}s: "
                        "not asking again before then"
                    )
                delay = max(delay, retry_after)
            attempt += 1
            logger.info(
                "retrying url=%s reason=%r attempt=%d delay_s=%.2f",
                shown, outcome.reason, attempt, delay,
            )  # fmt: skip
            if self._wait(delay):
                raise SourceError(f"{outcome.reason} from {shown}; stopped before retrying")

    def _attempt(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        shown: str,
    ) -> Response | _Failure:
        with _Watch(self._stop, self._clock() + self._timeout, self._clock) as watch:
            try:
                r = self._session.get(
                    url, params=params, headers=headers, timeout=self._timeout, stream=True
                )
            except requests.RequestException as e:
                return self._cut_short(watch, e, "no answer")
            try:
                if r.status_code in RETRY_STATUSES:
                    retry_after = parse_retry_after(r.headers.get("Retry-After"))
                    return _Failure(f"HTTP {r.status_code}", True, retry_after)
                body = self._read_body(r, watch)
                if isinstance(body, _Failure):
                    return body
                return Response(r.status_code, body, shown)
            finally:
                r.close()

    def _read_body(self, r: requests.Response, watch: _Watch) -> bytes | _Failure:
        declared = r.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            return self._too_large()
        body = bytearray()
        try:
            while True:
                if watch.check() is not None:
                    return self._cut_short(watch, None, "an incomplete answer")
                # read1 returns what has arrived (at most one read from the socket) instead
                # of waiting for a whole chunk, so the checks above run as bytes trickle in.
                chunk = r.raw.read1(_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    return bytes(body)
                body += chunk
                if len(body) > self._max_body:
                    return self._too_large()
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as e:
            return self._cut_short(watch, e, "an incomplete answer")

    def _cut_short(self, watch: _Watch, error: Exception | None, what: str) -> _Failure:
        if watch.reason == "stopped":
            return _Failure(f"stopped while waiting for {what}", False)
        if watch.reason == "deadline" or isinstance(error, requests.Timeout):
            return _Failure(f"{what} within the {self._timeout:g}s deadline", False)
        if isinstance(error, requests.ConnectionError):
            # The exception text holds the full URL; keep only the kind of failure.
            return _Failure(f"connection failed ({type(error).__name__})", True)
        return _Failure(f"request failed ({type(error).__name__})", True)

    def _too_large(self) -> _Failure:
        return _Failure(f"an answer larger than {self._max_body} bytes", False)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    wait = when.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, wait), MAX_RETRY_AFTER_S)
