from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict

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


def test_paced_stream_keeps_the_rate_and_stops_on_the_flag():
    stop = threading.Event()
    source = SimulatedSource(stop, seed=1, rate=50, start_ms=1_750_000_000_000)
    started = time.monotonic()
    got: list[Tick] = []
    for tick in source.stream(SYMBOLS):
        got.append(tick)
        if len(got) == 26:
            stop.set()
    took = time.monotonic() - started
    assert len(got) == 26  # the stream ended on the flag, within one period
    assert 0.45 <= took < 2.0  # 25 periods of 20 ms
    assert got == list(simulated_ticks(1, SYMBOLS, 26, 1_750_000_000_000, rate=50))
