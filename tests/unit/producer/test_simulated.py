from __future__ import annotations

import itertools
import threading
from collections import defaultdict

import pytest

from common.contract import Tick
from producer import simulated_ticks
from producer.sources.simulated import SimulatedSource

SYMBOLS = ["AAPL", "MSFT", "GOOG"]


def test_same_seed_gives_the_same_ticks_and_another_seed_does_not():
    a = list(simulated_ticks(7, SYMBOLS, 3000, start_ms=1_750_000_000_000))
    b = list(simulated_ticks(7, SYMBOLS, 3000, start_ms=1_750_000_000_000))
    c = list(simulated_ticks(8, SYMBOLS, 3000, start_ms=1_750_000_000_000))
    assert a == b
    assert [t.price for t in a] != [t.price for t in c]


def test_a_symbols_series_does_not_depend_on_the_others():
    alone = [t for t in simulated_ticks(7, ["AAPL"], 100, 1_750_000_000_000, rate=10)]
    mixed = [t for t in simulated_ticks(7, ["MSFT", "AAPL"], 200, 1_750_000_000_000, rate=20)]
    assert [t.price for t in alone] == [t.price for t in mixed if t.symbol == "AAPL"]


def test_ticks_meet_the_contract_round_robin_with_realistic_volumes():
    ticks = list(simulated_ticks(1, SYMBOLS, 30_000, start_ms=1_750_000_000_000))
    now = 1_750_000_000_000 + 10_000_000
    assert all(t.validated(now) == t for t in ticks)
    assert [t.symbol for t in ticks[:6]] == SYMBOLS * 2
    volumes = [t.volume for t in ticks]
    assert (
        min(volumes) >= 1 and any(v % 100 == 0 for v in volumes) and any(v < 100 for v in volumes)
    )


def test_seq_numbers_a_symbols_ticks_within_one_millisecond():
    ticks = list(simulated_ticks(1, SYMBOLS, 20_000, start_ms=1_750_000_000_000, rate=0))
    assert len({(t.symbol, t.ts, t.seq) for t in ticks}) == len(ticks)
    by_symbol_ms = defaultdict(list)
    for t in ticks:
        by_symbol_ms[(t.symbol, t.ts)].append(t.seq)
    assert all(seqs == list(range(len(seqs))) for seqs in by_symbol_ms.values())
    assert max(t.seq for t in ticks) > 0  # full speed packs several ticks into a millisecond


def test_simulated_clock_follows_the_rate():
    ticks = list(simulated_ticks(1, SYMBOLS, 31, start_ms=1_750_000_000_000, rate=10))
    assert ticks[0].ts == 1_750_000_000_000
    assert ticks[30].ts == 1_750_000_000_000 + 3000
    assert all(t.seq == 0 for t in ticks)


def test_prices_move_like_a_random_walk():
    ticks = [t for t in simulated_ticks(3, ["AAPL"], 5000, 1_750_000_000_000, rate=1)]
    prices = [t.price for t in ticks]
    steps = [abs(b / a - 1) for a, b in itertools.pairwise(prices)]
    assert len(set(prices)) > 100
    assert max(steps) < 0.01  # seconds apart: no jumps of a percent


class FakeTime:
    """A clock that moves only when the stream waits: pacing without real time."""

    def __init__(self, stop: threading.Event, stop_after: int) -> None:
        self.now = 50.0
        self.waits: list[float] = []
        self._stop = stop
        self._stop_after = stop_after

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        if len(self.waits) >= self._stop_after:
            self._stop.set()
        return self._stop.is_set()


def test_paced_stream_keeps_the_rate_and_stops_on_the_flag():
    stop = threading.Event()
    fake = FakeTime(stop, stop_after=26)
    source = SimulatedSource(stop, 1, 50, 1_750_000_000_000, fake.clock, fake.wait)
    got: list[Tick] = list(source.stream(SYMBOLS))
    # The first tick goes at once; each later one waits one period of 20 ms; the 26th wait
    # sees the flag, so 26 ticks came.
    assert fake.waits == pytest.approx([0.02] * 26)
    assert got == list(simulated_ticks(1, SYMBOLS, 26, 1_750_000_000_000, rate=50))


def test_a_stream_that_fell_behind_still_stops_on_the_flag():
    stop = threading.Event()
    late = iter(range(0, 10**6, 1000))  # a clock far ahead: no tick ever needs a wait
    source = SimulatedSource(stop, 1, 50, 1_750_000_000_000, lambda: float(next(late)))
    got = []
    for tick in source.stream(SYMBOLS):
        got.append(tick)
        if len(got) == 5:
            stop.set()
    assert len(got) == 5
