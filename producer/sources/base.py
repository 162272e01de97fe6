"""The one small interface every price source implements, and what a source hands back.

A source yields, in the order it learnt them:
- `Tick`: a price (not validated yet: the publisher checks it against the contract);
- `Rejected`: input that is not a tick (unknown symbol, malformed body); it goes to the
  dead-letter topic with its raw bytes;
- `NoData`: the source answered but has nothing for the symbol (market data missing);
- `Failed`: a request that did not get an answer (timeouts, HTTP errors after retries).

Polled sources (yahoo, stooq, finnhub) answer one round per `fetch()`; streaming sources
(simulated, replay) pace themselves and yield until done or stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.contract import Tick

if TYPE_CHECKING:  # the HTTP client imports SourceError from here
    from producer.http_client import HttpClient

# Raw bodies kept in a dead letter; a whole HTML error page adds nothing past this.
MAX_RAW_BYTES = 2048


class SourceError(Exception):
    """A request to a source failed; the message says why, without secrets."""


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    raw: bytes
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class NoData:
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str
    symbols: tuple[str, ...] = ()


Item = Tick | Rejected | NoData | Failed


def clip(raw: bytes) -> bytes:
    return raw if len(raw) <= MAX_RAW_BYTES else raw[:MAX_RAW_BYTES] + b"...[clipped]"


class PolledSource(ABC):
    """A source asked for quotes every interval, over HTTP through one shared client."""

    name: str

    def __init__(self, http: HttpClient, base_url: str):
        self._http = http
        self._base = base_url

    @abstractmethod
    def min_interval_s(self, symbol_count: int) -> float:
        """The shortest interval between rounds that keeps within the source's free limits."""

    @abstractmethod
    def fetch(self, symbols: Sequence[str]) -> Iterator[Item]:
        """One round. One symbol's or one request's failure is a `Failed`, never an exception."""

    def close(self) -> None:
        self._http.close()


class StreamSource(ABC):
    """A source that produces ticks at its own pace until it ends or `stop` is set."""

    name: str

    @abstractmethod
    def stream(self, symbols: Sequence[str]) -> Iterator[Item]: ...
