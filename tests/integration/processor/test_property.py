"""Property: for generated tick streams cut into micro-batches, Spark's final aggregates equal the
reference's (avg and vwap within relative 1e-9, the rest exact), and so does the late count."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from common.contract import Tick
from common.reference import aggregate_batches, differences
from tests.integration.processor.conftest import T0, keyed, late_rows, output_aggregates

WINDOWS = (10_000, 60_000)
WATERMARK = 20_000

ticks = st.builds(
    Tick,
    symbol=st.sampled_from(["AAPL", "MSFT", "BRK.B"]),
    # Cents, like real quotes; a wide range so sums round differently in different orders.
    price=st.integers(1, 10_000_000).map(lambda cents: cents / 100),
    volume=st.integers(0, 5_000),
    ts=st.integers(T0, T0 + 150_000),
    source=st.just("prop"),
    seq=st.integers(0, 2),
)
# (symbol, ts, seq) identifies a tick, so a stream never repeats it.
streams = st.lists(
    st.lists(ticks, min_size=1, max_size=12), min_size=1, max_size=3
).filter(lambda batches: len({(t.symbol, t.ts, t.seq) for b in batches for t in b})
         == sum(len(b) for b in batches))  # fmt: skip


@settings(
    max_examples=5,
    deadline=None,
    # No shrinking: each example costs seconds of Spark; a failure prints its example as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=streams)
# Found by this test: two late ticks in one window and batch are one late row to Spark.
@example(
    batches=[
        [Tick("AAPL", 0.01, 0, T0 + 147_587, "prop"), Tick("AAPL", 0.01, 0, T0 + 26_942, "prop")],
        [Tick("AAPL", 0.01, 0, T0 + ts, "prop") for ts in (119_086, 52_126, 0)],
    ]
)
def test_spark_matches_the_reference_on_generated_streams(
    batches, processor_settings, batch_runner
):
    config = processor_settings(windows_ms=WINDOWS, watermark_ms=WATERMARK)
    runner = batch_runner(config)
    for batch in batches:
        runner.run(keyed(batch))
    expected = aggregate_batches(batches, WINDOWS, WATERMARK)
    _, final = output_aggregates(config.bootstrap_servers, config.aggregates_topic)
    assert differences(expected.aggregates, final) == []
    assert runner.totals.late_dropped == late_rows(batches, WINDOWS, WATERMARK)
