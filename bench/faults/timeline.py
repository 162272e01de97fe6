"""What one fault cost, read from the rows alone: each tick's event time and when Cassandra wrote
its row (WRITETIME, the coordinator's clock), against when the node was killed and restarted."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from bench.pipeline.measure import Percentiles

# The first seconds of the load are the producer's and storage's start, not the baseline; the
# last ones before the kill are not either: ticks sent then may still be in flight to the victim.
SETTLE_MS = 5_000
IN_FLIGHT_MS = 2_000
# tick->row is "back to normal" once each second's median is under this many times the baseline's.
NORMAL_FACTOR = 2.0


@dataclass(frozen=True)
class Marks:
    """Wall-clock milliseconds: the load began, the node was killed, started again (ready), and
    the load ended."""

    start_ms: int
    kill_ms: int
    restart_ms: int
    end_ms: int


@dataclass
class Timeline:
    baseline: Percentiles
    during: Percentiles
    # From the kill to the first row written for a tick sent after it.
    first_stored_s: float
    # The longest time after the kill in which no row at all was written.
    longest_stall_s: float
    # From the kill until tick->row is back under NORMAL_FACTOR x the baseline's median for good.
    normal_s: float
    # Rows written per second before the kill, while the node was down, and after it was back.
    rates: tuple[float, float, float]


def _latency(rows: list[tuple[int, int]], lo: int, hi: int) -> list[float]:
    return [float(w - ts) for ts, w in rows if lo <= ts < hi]


def _written_per_s(rows: list[tuple[int, int]], lo: int, hi: int) -> float:
    return sum(1 for _, w in rows if lo <= w < hi) / max(1e-3, (hi - lo) / 1000)


def _longest_stall_s(rows: list[tuple[int, int]], marks: Marks) -> float:
    writes = sorted(w for _, w in rows if marks.kill_ms <= w <= marks.end_ms)
    edges = [marks.kill_ms, *writes, marks.end_ms]
    gaps = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    return max(gaps, default=marks.end_ms - marks.kill_ms) / 1000


def _normal_s(rows: list[tuple[int, int]], marks: Marks, baseline_p50: float) -> float:
    by_second: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ts, w in rows:
        if ts >= marks.kill_ms:
            by_second[(ts - marks.kill_ms) // 1000].append((ts, w))
    bound = NORMAL_FACTOR * baseline_p50
    slow = [s for s, group in by_second.items()
            if statistics.median(w - ts for ts, w in group) > bound]  # fmt: skip
    if not slow:
        return 0.0
    # The last slow second's ticks were all through when its last row was written.
    return (max(w for _, w in by_second[max(slow)]) - marks.kill_ms) / 1000


def analyse(rows: list[tuple[int, int]], marks: Marks, expected: int) -> Timeline:
    """`rows` are (event time, written) in ms of every stored tick; `expected` how many ticks
    were published, so that unwritten ones count as infinitely late."""
    settled = marks.start_ms + SETTLE_MS
    baseline = Percentiles.of(_latency(rows, settled, marks.kill_ms - IN_FLIGHT_MS))
    during = _latency(rows, marks.kill_ms, marks.restart_ms)
    after_kill = [w for ts, w in rows if ts >= marks.kill_ms]
    return Timeline(
        baseline=baseline,
        during=Percentiles.of(during, missing=max(0, expected - len(rows))),
        first_stored_s=(min(after_kill) - marks.kill_ms) / 1000 if after_kill else float("inf"),
        longest_stall_s=_longest_stall_s(rows, marks),
        normal_s=_normal_s(rows, marks, baseline.p50),
        rates=(
            _written_per_s(rows, settled, marks.kill_ms),
            _written_per_s(rows, marks.kill_ms, marks.restart_ms),
            _written_per_s(rows, marks.restart_ms, marks.end_ms),
        ),
    )
