"""Poison pills in the ticks topic: thousands of hostile records of every kind tests/hostile.py
makes, mixed with valid ticks, while the processor's query runs as in production (a processing
time trigger). The query must stay up with no failure, dead-letter each hostile record exactly
once with its reason, stage and origin, and aggregate the valid ticks around them exactly."""

from __future__ import annotations

import json
import random

from common.contract import MAX_VOLUME, Tick, read_dead_letter
from common.reference import aggregate, differences
from processor import aggregation, queries
from tests.hostile import corpus, overflow_in_sum_ticks
from tests.integration.processor.conftest import (
    T0,
    keyed,
    produce,
    run_until_dead_lettered,
)

WINDOWS = (10_000, 60_000, 300_000)


def test_hostile_records_are_dead_lettered_once_and_stop_nothing(spark, processor_settings):
    settings = processor_settings(windows_ms=WINDOWS, max_offsets_per_trigger=2_000)
    rng = random.Random(14)
    # Valid ticks spanning 20 s of event time (< the 30 s watermark): none is late, all count.
    valid = [
        Tick(rng.choice(["AAPL", "MSFT", "BRK.B"]), rng.randrange(100, 50_000) / 100,
             rng.randrange(0, 1000), T0 + rng.randrange(20_000), "test", i)
        for i in range(1500)
    ]  # fmt: skip
    hostile = corpus(4000, "ticks", T0 + 60_000, seed=5)
    hostile += overflow_in_sum_ticks("AAPL", T0 + 1_000, 100)
    kinds = {h.kind for h in hostile}
    assert len(kinds) >= 20, kinds
    mixed = [(True, r) for r in keyed(valid)] + [(False, (h.key, h.value)) for h in hostile]
    rng.shuffle(mixed)

    query = queries.start(spark, settings, queries.Trigger(200))
    try:
        offsets = produce(settings.bootstrap_servers, settings.ticks_topic, [r for _, r in mixed])
        hostile_offsets = sorted(o for o, (good, _) in zip(offsets, mixed, strict=True) if not good)
        expected = aggregate(valid, WINDOWS)
        letters, final, tracker = run_until_dead_lettered(query, settings, expected, len(hostile))
    finally:
        query.stop()

    assert differences(expected, final) == []
    seen = [read_dead_letter(r.value) for r in letters]
    assert sorted(d["origin"]["offset"] for d in seen) == hostile_offsets, "each exactly once"
    for letter in seen:
        assert letter["stage"] == "processor"
        assert letter["origin"]["topic"] == settings.ticks_topic
        assert letter["reason"]
    # The progress reports count them too (one observed metric per batch, none lost).
    assert tracker.totals[queries.QUERY].dead_letters == len(hostile)


def test_a_window_whose_volume_would_overflow_is_dead_lettered_not_a_failed_batch(spark):
    """The second guard behind the contract's bounds: a window sum beyond a 64-bit long (only
    reachable past the contract, so the plan's aggregation is fed directly) becomes a dead
    letter naming the window, and the other windows are still aggregated."""
    rows = [("AAPL", 10.0, 2**62, T0 + i, i) for i in range(3)]  # 3 * 2^62 > 2^63 - 1
    rows += [("MSFT", 10.0, MAX_VOLUME, T0 + i, i) for i in range(3)]
    ticks = spark.createDataFrame(
        rows, "symbol string, price double, volume long, ts long, seq long"
    )
    aggs = aggregation.aggregates(ticks, (60_000,), 30_000)
    out = aggregation.aggregates_to_kafka(aggs, "aggs", "dead").collect()
    by_topic = {r["topic"]: r for r in out}
    assert sorted(by_topic) == ["aggs", "dead"]
    assert by_topic["dead"]["key"] == b"AAPL"
    letter = read_dead_letter(by_topic["dead"]["value"])
    assert "volume" in letter["reason"] and letter["stage"] == "processor"
    assert letter["origin"] == {"symbol": "AAPL", "window_ms": 60_000, "window_start": T0}
    assert json.loads(by_topic["aggs"]["value"])["volume"] == 3 * MAX_VOLUME
