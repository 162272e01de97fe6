"""HTTP for the polled sources: one session, timeouts, bounded retries, Retry-After, cool-downs.

Retried: 429, 5xx, timeouts and connection errors, with exponential backoff and full jitter. A
Retry-After longer than the longest backoff is not slept through: the host cools down until then,
and requests to it fail fast (the next scheduled round tries again), so one throttled source never
holds up shutdown or hammers the API. Error texts never include the URL's query or the headers,
where keys live.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from producer.sources.base import SourceError

logger = logging.getLogger(__name__)

# Yahoo refuses clients that do not look like a browser; the others do not mind.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    url: str  # without the query string


class HttpClient:
    def __init__(
        self,
        stop: threading.Event,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._stop = stop
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._clock = clock
        self._cool_until: dict[str, float] = {}
        self._session = requests.Session()
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

        Raises SourceError when no usable answer came after the retries.
        """
        parts = urlsplit(url)
        host, shown = parts.netloc, f"{parts.scheme}://{parts.netloc}{parts.path}"
        wait = self._cool_until.get(host, 0.0) - self._clock()
        if wait > 0:
            raise SourceError(f"{host} asked us to wait; {wait:.0f}s of its Retry-After left")
        attempt = 0
        while True:
            reason, retry_after = self._attempt(url, params, headers, shown)
            if isinstance(reason, Response):
                return reason
            if attempt >= self._retries:
                raise SourceError(f"{reason} from {shown}, after {attempt + 1} attempts")
            delay = random.uniform(0, min(self._max_backoff, self._backoff * 2**attempt))
            if retry_after is not None:
                if retry_after > self._max_backoff:
                    self._cool_until[host] = self._clock() + retry_after
                    raise SourceError(
                        f"{reason} from {shown} with Retry-After {retry_after:.0f}s: "
                        "not asking again before then"
                    )
                delay = max(delay, retry_after)
            attempt += 1
            logger.info(
                "retrying url=%s reason=%r attempt=%d delay_s=%.2f", shown, reason, attempt, delay
            )
            if self._stop.wait(delay):
                raise SourceError(f"{reason} from {shown}; stopped before retrying")

    def _attempt(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        shown: str,
    ) -> tuple[Response | str, float | None]:
        try:
            r = self._session.get(url, params=params, headers=headers, timeout=self._timeout)
        except requests.Timeout:
            return f"no answer within {self._timeout:g}s", None
        except requests.ConnectionError as e:
            # The exception text holds the full URL; keep only the kind of failure.
            return f"connection failed ({type(e).__name__})", None
        except requests.RequestException as e:
            return f"request failed ({type(e).__name__})", None
        if r.status_code in RETRY_STATUSES:
            return f"HTTP {r.status_code}", parse_retry_after(r.headers.get("Retry-After"))
        return Response(r.status_code, r.content, shown), None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
