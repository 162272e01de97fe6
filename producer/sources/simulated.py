"""Simulated prices: geometric Brownian motion per symbol, seeded, deterministic, offline.

The same (seed, symbols, start_ms, rate) always gives the same ticks, prices, volumes, times and
seqs, so a test can regenerate exactly what a run published. Each symbol has its own random
stream seeded from (seed, symbol): its series does not depend on which other symbols run beside
it.

Time follows a simulated clock anchored at `start_ms`: tick i (round-robin over the symbols) is at
start_ms + i * 1000 / rate. With rate 0 ("as fast as possible") the clock runs as if the rate were
`FULL_SPEED_CLOCK_RATE`, about what one process publishes, so event time stays near wall time.
When several ticks of a symbol share a millisecond, `seq` numbers them 0, 1, 2 ...
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from common.contract import Tick, now_ms
from producer.sources.base import Item, StreamSource

FULL_SPEED_CLOCK_RATE = 50_000.0
# 252 trading days of 6.5 hours: volatility is quoted per trading year.
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


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
        prices.append(rng.uniform(20.0, 500.0))
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
