"""The one small interface every price source implements, and what a source hands back.

A source yields, in the order it learnt them:
- `Tick`: a price (not validated yet: the publisher checks it against the contract);
- `Rejected`: input that is not a tick (unknown symbol, malformed body); it goes to the
  dead-letter topic with its raw bytes;
- `NoData`: the source answered but has nothing for the symbol (market data missing);
- `Failed`: a request that did not get an answer (timeouts, HTTP errors after retries).

History (`bars()`, see `History`) is the same four outcomes with a `Bar` in place of the tick.

Polled sources (yahoo, stooq, finnhub) answer one round per `fetch()`; streaming sources
(simulated, replay) pace themselves and yield until done or stopped. A polled source never raises
out of a round: whatever goes wrong with one request (a parser meeting something it did not
expect included) becomes a `Failed` for that request's symbols, and the round goes on. Every
`Rejected` and `Failed` of a polled source names the source in its reason and the symbol(s) it
was fetching.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from common.contract import Bar, Tick, short
from producer.http_client import HttpClient

logger = logging.getLogger(__name__)

# Raw bodies kept in a dead letter; a whole HTML error page adds nothing past this.
MAX_RAW_BYTES = 2048


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
BarItem = Bar | Rejected | NoData | Failed

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class BarLimit:
    """What a source serves of one interval: `span_ms` the most one request may ask for,
    `reach_ms` how far back from now it goes (0: as far as it has)."""

    span_ms: int
    reach_ms: int = 0


class History:
    """A source's past as bars. `BAR_LIMITS` names the intervals it serves; `bars()` never
    raises: whatever goes wrong with a request is a `Failed` naming the source and symbol."""

    name: str
    BAR_LIMITS: dict[str, BarLimit] = {}

    def fetch_bars(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterable[BarItem]:
        raise NotImplementedError

    def history_end_ms(self, now_ms: int) -> int:
        """Where this source's past ends: now, unless its live prices start at another time."""
        return now_ms

    def bars(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> Iterator[BarItem]:
        """The bars of `symbol` that start in [start_ms, end_ms), as the source gives them
        (unvalidated: the publisher judges each one against the contract)."""
        if interval not in self.BAR_LIMITS:
            served = ", ".join(self.BAR_LIMITS) or "none"
            yield Failed(f"{self.name}: no {interval} bars (serves: {served})", (symbol,))
            return
        try:
            items = list(self.fetch_bars(symbol, interval, start_ms, end_ms))
        except Exception as e:  # noqa: BLE001 - one request's surprise must not end a backfill
            logger.exception(
                "source=%s symbol=%s: unexpected failure in history", self.name, symbol
            )
            items = [Failed(f"{self.name}: unexpected {type(e).__name__}: {short(e)}", (symbol,))]
        yield from items


def clip(raw: bytes) -> bytes:
    return raw if len(raw) <= MAX_RAW_BYTES else raw[:MAX_RAW_BYTES] + b"...[clipped]"


def number(text: str) -> int | float:
    """A whole number as an int, anything else float() reads as a float (1e999 is inf): a
    text source's numbers, for the contract to judge."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def load_json(body: bytes) -> tuple[object, str | None]:
    """(document, None), or (None, why not): nothing a body holds makes this raise."""
    try:
        return json.loads(body), None
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, f"not JSON ({type(e).__name__})"


class PolledSource(History, ABC):
    """A source asked for quotes every interval, over HTTP through one shared client."""

    name: str

    def __init__(self, http: HttpClient, base_url: str):
        self._http = http
        self._base = base_url

    @abstractmethod
    def min_interval_s(self, symbol_count: int) -> float:
        """The shortest interval between rounds that keeps within the source's free limits."""

    def requests_for(self, symbols: Sequence[str]) -> Iterator[tuple[str, ...]]:
        """The symbols asked together in one request: one each, unless a source batches."""
        for symbol in symbols:
            yield (symbol,)

    @abstractmethod
    def fetch_request(self, symbols: tuple[str, ...]) -> Iterable[Item]:
        """What one request for these symbols gives; may raise, `fetch` catches it."""

    def fetch(self, symbols: Sequence[str]) -> Iterator[Item]:
        """One round. One symbol's or one request's failure is a `Failed`, never an exception."""
        for group in self.requests_for(symbols):
            try:
                items = list(self.fetch_request(group))
            except Exception as e:  # noqa: BLE001 - one request's surprise must not end a round
                logger.exception("source=%s symbols=%s: unexpected failure", self.name, group)
                items = [Failed(f"{self.name}: unexpected {type(e).__name__}: {short(e)}", group)]
            yield from items

    def close(self) -> None:
        self._http.close()


class StreamSource(History, ABC):
    """A source that produces ticks at its own pace until it ends or `stop` is set."""

    name: str

    @abstractmethod
    def stream(self, symbols: Sequence[str]) -> Iterator[Item]: ...
