"""Known ticks in, exact aggregates out: Spark against the plain-Python reference.

Windows 10s and 1m, watermark 30s. Each batch_runner.run() is one micro-batch run, so the
watermark in force for each batch is known (see common.reference.aggregate_batches).
Float tolerance: avg and vwap relative 1e-9 (FLOAT_REL_TOL); every other field exactly.
"""

from __future__ import annotations

from collections import Counter

from common.reference import aggregate_batches, differences
from tests.integration.processor.conftest import (
    T0,
    keyed,
    late_rows,
    output_aggregates,
    tick,
)

WINDOWS = (10_000, 60_000)
WATERMARK = 30_000

BATCHES = [
    # Several symbols, out of order, two AAPL ticks in the same millisecond told apart by seq.
    [
        tick("AAPL", 5_000, 101.0, 10),
        tick("AAPL", 1_000, 100.0, 5),
        tick("AAPL", 5_000, 102.0, 0, seq=1),
        tick("AAPL", 12_000, 99.0, 20),
        tick("AAPL", 3_000, 103.0, 1),
        tick("MSFT", 2_000, 50.0, 0),
        tick("MSFT", 8_000, 51.0, 0),
        tick("MSFT", 59_999, 52.0, 3),
        tick("GOOG", 30_000, 140.0, 7),
        tick("GOOG", 70_000, 141.0, 1),
    ],
    # Watermark now 70s - 30s = 40s: late for some 10s windows, still in time for 1m ones.
    [
        tick("AAPL", 500, 98.0, 2),  # 10s window [0,10s) ended: dropped there; opens the 1m one
        tick("AAPL", 39_999, 104.0, 1),  # 10s window ends at 40s == watermark: dropped
        tick("GOOG", 40_000, 139.0, 2),  # 10s window ends at 50s > watermark: counts
        tick("MSFT", 9_000, 49.0, 4),
        tick("TSLA", 95_000, 200.0, 5),
    ],
    # Watermark now 95s - 30s = 65s: the first minute is closed for good.
    [
        tick("AAPL", 2_000, 1.0, 1000),  # late for both windows: would change open and vwap
        tick("GOOG", 64_000, 142.0, 1),
        tick("TSLA", 94_000, 199.0, 1),
        tick("TSLA", 95_000, 201.0, 1, seq=1),  # same ms as 200.0 (seq 0): 201.0 closes
    ],
]


def test_known_ticks_give_the_reference_aggregates(processor_settings, batch_runner):
    settings = processor_settings(windows_ms=WINDOWS, watermark_ms=WATERMARK)
    runner = batch_runner(settings)
    for batch in BATCHES:
        runner.run(keyed(batch))

    expected = aggregate_batches(BATCHES, WINDOWS, WATERMARK)
    emitted, final = output_aggregates(settings.bootstrap_servers, settings.aggregates_topic)

    assert differences(expected.aggregates, final) == []
    # The scenario does what its comments say: five (tick, window) pairs are late...
    assert len(expected.dropped) == 5
    # ...each alone in its window and batch; the tick late for both sizes is dropped once, by
    # the deduplication, before it is split per window size.
    assert runner.totals.late_dropped == late_rows(BATCHES, WINDOWS, WATERMARK) == 4
    # Update mode: a window that changed in a later batch was emitted again under its identity.
    repeats = Counter((a.symbol, a.window_ms, a.window_start) for a in emitted)
    assert repeats[("GOOG", 60_000, T0 + 60_000)] == 2
    assert runner.totals.dead_letters == 0


def test_tie_rule_orders_same_millisecond_ticks_by_seq(processor_settings, batch_runner):
    """seq, not arrival order, decides open and close within one millisecond."""
    settings = processor_settings(windows_ms=(60_000,))
    batch = [
        tick("IBM", 10_000, 3.0, seq=2),
        tick("IBM", 10_000, 1.0, seq=0),
        tick("IBM", 10_000, 2.0, seq=1),
    ]
    batch_runner(settings).run(keyed(batch))
    _, final = output_aggregates(settings.bootstrap_servers, settings.aggregates_topic)
    (agg,) = final.values()
    assert (agg.open, agg.close, agg.count) == (1.0, 3.0, 3)
