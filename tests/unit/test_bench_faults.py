"""The fault benchmark's pure parts: its settings and what a fault cost, read from rows."""

from __future__ import annotations

import math

import pytest

from bench.faults.settings import parse
from bench.faults.timeline import Marks, analyse

START, KILL, RESTART, END = 0, 20_000, 40_000, 60_000
MARKS = Marks(START, KILL, RESTART, END)


def _steady(lo: int, hi: int, latency: int, every: int = 10) -> list[tuple[int, int]]:
    return [(ts, ts + latency) for ts in range(lo, hi, every)]


def test_settings_take_faults_in_the_order_given_and_refuse_unknown_ones() -> None:
    s = parse(["--faults", "cassandra,broker,cassandra", "--cassandra-down", "1m"], environ={})
    assert s.faults == ("cassandra", "broker")
    assert s.down_s("cassandra") == 60.0
    assert parse([], environ={"BENCH_RATE": "2000"}).rate == 2000
    with pytest.raises(SystemExit):
        parse(["--faults", "spark"], environ={})


def test_a_fault_nobody_noticed_costs_nothing() -> None:
    rows = _steady(START, END, latency=20)
    t = analyse(rows, MARKS, expected=len(rows))
    assert t.baseline.p50 == 20 and t.during.p99 == 20
    assert t.normal_s == 0.0
    assert t.first_stored_s == pytest.approx(0.02)
    assert t.longest_stall_s == pytest.approx(0.01)  # one row every 10 ms
    assert t.rates[0] == pytest.approx(100, rel=0.05) and t.rates[2] == pytest.approx(100, rel=0.05)


def test_a_stall_shows_in_every_figure() -> None:
    # Nothing written for 8 s after the kill; the ticks of those seconds land at 28 s, late.
    rows = _steady(START, KILL, 20) + [(ts, 28_000) for ts in range(KILL, 28_000, 10)]
    rows += _steady(28_000, END, 20)
    t = analyse(rows, MARKS, expected=len(rows))
    assert t.first_stored_s == pytest.approx(8.0)
    assert t.longest_stall_s == pytest.approx(8.0, abs=0.05)
    # The last slow second of ticks (27-28 s) was through at 28 s: 8 s after the kill.
    assert t.normal_s == pytest.approx(8.0)
    assert t.during.p99 > 7_000


def test_unwritten_ticks_count_as_infinitely_late() -> None:
    rows = _steady(START, END, 20)
    t = analyse(rows, MARKS, expected=len(rows) + len(rows) // 50)
    assert math.isinf(t.during.p99) and t.during.missing == len(rows) // 50


def test_nothing_written_after_the_kill_is_never() -> None:
    rows = _steady(START, KILL, 20)
    t = analyse(rows, MARKS, expected=len(rows))
    assert math.isinf(t.first_stored_s)
    assert t.longest_stall_s == pytest.approx((END - KILL) / 1000, abs=0.05)
