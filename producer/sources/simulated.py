"""Simulated prices: geometric Brownian motion per symbol, seeded, deterministic, offline.

The same (seed, symbols, start_ms, rate) always gives the same ticks, prices, volumes, times and
seqs, so a test can regenerate exactly what a run published. Each symbol has its own random
stream seeded from (seed, symbol): its series does not depend on which other symbols run beside
it.

Time follows a simulated clock anchored at `start_ms`: tick i (round-robin over the symbols) is at
start_ms + i * 1000 / rate. With rate 0 ("as fast as possible") the clock runs as if the rate were
`FULL_SPEED_CLOCK_RATE`, about what one process publishes, so event time stays near wall time.
When several ticks of a symbol share a millisecond, `seq` numbers them 0, 1, 2 ...

History: a symbol's past is a deterministic function of absolute time (`simulated_price_at`: a
few seeded waves, from weeks down to minutes, around a seeded level), so a bar asked twice, by
any run, is the same bar, and a gap left by an outage is filled with what any other run would
have given. The live walk starts from the past's price at its first tick: history ends where
the live prices begin. It trades round the clock, like a crypto market.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from common.contract import BAR_INTERVALS, Bar, Tick, now_ms
from producer.sources.base import DAY_MS, BarItem, BarLimit, Item, StreamSource

FULL_SPEED_CLOCK_RATE = 50_000.0
# 252 trading days of 6.5 hours: volatility is quoted per trading year.
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


# The waves of the past: periods in days; each moves the log price by about what the
# symbol's volatility gives over that period.
_WAVE_DAYS = (23.0, 4.3, 0.9, 0.13, 0.011)
_MIX = 0x9E3779B97F4A7C15


class _Past:
    """The seeded shape of one symbol's past (see the module's docstring)."""

    __slots__ = ("level", "waves", "salt")

    def __init__(self, seed: int, symbol: str):
        rng = random.Random(f"{seed}:{symbol}:past")
        self.level = math.log(rng.uniform(20.0, 500.0))
        sigma = rng.uniform(0.15, 0.6)
        self.waves = [
            (sigma * math.sqrt(days / 252) * 0.7, 2 * math.pi / (days * DAY_MS),
             rng.uniform(0, 2 * math.pi))
            for days in _WAVE_DAYS
        ]  # fmt: skip
        self.salt = rng.getrandbits(64)

    def price(self, ms: int) -> float:
        return math.exp(self.level + sum(a * math.sin(w * ms + p) for a, w, p in self.waves))

    def noise(self, ms: int, k: int) -> float:
        """A deterministic number in [0, 1) for (time, k): a bar's wicks and volume."""
        h = ((ms // 1000) * _MIX + k * 0xBF58476D1CE4E5B9 + self.salt) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return (h >> 11) / float(1 << 53)


def simulated_price_at(seed: int, symbol: str, ms: int) -> float:
    """The simulated past's price of `symbol` at epoch ms: the same for every run."""
    return round(_Past(seed, symbol).price(ms), 2)


def simulated_bars(
    seed: int, symbol: str, interval: str, start_ms: int, end_ms: int
) -> Iterator[Bar]:
    """The bars of the simulated past that start in [start_ms, end_ms), oldest first."""
    past = _Past(seed, symbol)
    step = BAR_INTERVALS[interval]
    first = -(-start_ms // step) * step
    scale = math.sqrt(step / 60_000)
    for start in range(first, end_ms, step):
        open_ = round(past.price(start), 2)
        close = round(past.price(start + step), 2)
        wick = 0.0008 * scale
        high = round(max(open_, close) * (1 + wick * past.noise(start, 1)), 2)
        low = round(min(open_, close) * (1 - wick * past.noise(start, 2)), 2)
        volume = int(200 * step / 60_000 * (0.5 + past.noise(start, 3)))
        yield Bar(symbol, interval, start, max(open_, 0.01), max(high, 0.01), max(low, 0.01),
                  max(close, 0.01), volume, "simulated")  # fmt: skip


def simulated_ticks(
    seed: int,
    symbols: Sequence[str],
    count: int | None = None,
    start_ms: int | None = None,
    rate: float = 0.0,
) -> Iterator[Tick]:
    """The simulated ticks for these settings, unpaced: `count` of them, or endless if None."""
    if not symbols:
        raise ValueError("simulated_ticks needs at least one symbol")
    start = now_ms() if start_ms is None else start_ms
    clock_rate = rate if rate > 0 else FULL_SPEED_CLOCK_RATE
    n = len(symbols)
    # Years between two ticks of one symbol: sets how far a price moves per tick.
    dt = n / clock_rate / TRADING_SECONDS_PER_YEAR
    rngs, prices, drifts, scales = [], [], [], []
    for symbol in symbols:
        rng = random.Random(f"{seed}:{symbol}")
        sigma = rng.uniform(0.15, 0.6)  # annual volatility
        mu = 0.05  # annual drift
        rngs.append(rng)
        rng.uniform(20.0, 500.0)  # drawn still, so the rest of the stream is as before
        prices.append(simulated_price_at(seed, symbol, start))
        drifts.append((mu - sigma * sigma / 2) * dt)
        scales.append(sigma * math.sqrt(dt))
    last_ts = [-1] * n
    seqs = [0] * n
    source = "simulated"
    exp, log = math.exp, math.log
    i = 0
    while count is None or i < count:
        j = i % n
        rng = rngs[j]
        price = prices[j] * exp(drifts[j] + scales[j] * rng.gauss(0.0, 1.0))
        prices[j] = price
        # Trades come in odd lots of a few shares (55%, mean 30) or round lots of 100 (mean
        # 250 shares); one uniform draw picks the kind and, by its inverse CDF, the size.
        u = rng.random()
        if u < 0.55:
            volume = 1 + int(-30.0 * log(1.0 - u / 0.55))
        else:
            volume = 100 * (1 + int(-2.5 * log((1.0 - u) / 0.45)))
        ts = start + int(i * 1000 // clock_rate)
        if ts == last_ts[j]:
            seqs[j] += 1
        else:
            last_ts[j] = ts
            seqs[j] = 0
        yield Tick(symbols[j], max(0.01, round(price, 2)), volume, ts, source, seqs[j])
        i += 1


class SimulatedSource(StreamSource):
    name = "simulated"
    BAR_LIMITS = {  # noqa: RUF012 - a class constant, read only
        interval: BarLimit(span_ms=366 * DAY_MS) for interval in BAR_INTERVALS
    }

    def __init__(
        self,
        stop: threading.Event,
        seed: int,
        rate: float,
        start_ms: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ):
        self._stop = stop
        self._seed = seed
        self._rate = rate
        self._start_ms = start_ms
        self._clock = clock
        # Paces the stream; returns True when stopped. Tests pass a fake that moves `clock`.
        self._wait = stop.wait if wait is None else wait

    def history_end_ms(self, now_ms: int) -> int:
        # The live walk starts at SIM_START when one is set: the past ends there.
        return now_ms if self._start_ms is None else self._start_ms

    def fetch_bars(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[BarItem]:
        yield from simulated_bars(self._seed, symbol, interval, start_ms, end_ms)

    def stream(self, symbols: Sequence[str]) -> Iterator[Item]:
        ticks = simulated_ticks(self._seed, symbols, None, self._start_ms, self._rate)
        if self._rate <= 0:
            yield from ticks
            return
        period = 1.0 / self._rate
        began = self._clock()
        for i, tick in enumerate(ticks):
            wait = began + i * period - self._clock()
            if (wait > 0 and self._wait(wait)) or self._stop.is_set():
                return
            yield tick
