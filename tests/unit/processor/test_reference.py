"""The reference aggregation against values worked out by hand."""

import pytest

from common.contract import Tick
from common.reference import aggregate, aggregate_batches, differences, latest, window_start

T0 = 1_699_999_800_000  # a multiple of 1m


def t(offset_ms, price, volume=1, seq=0, symbol="AAPL"):
    return Tick(symbol, price, volume, T0 + offset_ms, "test", seq)


def test_window_start_is_aligned_to_the_epoch():
    assert window_start(T0 + 59_999, 60_000) == T0
    assert window_start(T0 + 60_000, 60_000) == T0 + 60_000
    assert window_start(T0 + 12_345, 10_000) == T0 + 10_000


def test_hand_computed_window():
    ticks = [t(30_000, 12.0, 1), t(10_000, 10.0, 3), t(50_000, 11.0, 0)]
    (agg,) = aggregate(ticks, [60_000]).values()
    assert (agg.open, agg.high, agg.low, agg.close) == (10.0, 12.0, 10.0, 11.0)
    assert agg.avg == pytest.approx(11.0)
    assert agg.vwap == pytest.approx((10.0 * 3 + 12.0 * 1) / 4)
    assert (agg.volume, agg.count, agg.window_end) == (4, 3, T0 + 60_000)
    assert agg.validated(now=T0) == agg  # the reference speaks the contract


def test_open_and_close_follow_ts_then_seq_not_arrival():
    ticks = [t(5, 3.0, seq=1), t(5, 2.0, seq=0), t(1, 9.0), t(5, 4.0, seq=2)]
    (agg,) = aggregate(ticks, [60_000]).values()
    assert (agg.open, agg.close) == (9.0, 4.0)


def test_vwap_is_the_average_when_no_volume():
    (agg,) = aggregate([t(0, 10.0, 0), t(1, 20.0, 0)], [60_000]).values()
    assert agg.vwap == agg.avg == 15.0


def test_every_window_size_and_symbol_is_separate():
    result = aggregate([t(0, 1.0), t(15_000, 2.0), t(0, 5.0, symbol="MSFT")], [10_000, 60_000])
    assert sorted(result) == [
        ("AAPL", 10_000, T0),
        ("AAPL", 10_000, T0 + 10_000),
        ("AAPL", 60_000, T0),
        ("MSFT", 10_000, T0),
        ("MSFT", 60_000, T0),
    ]


def test_watermark_drops_by_window_end_per_batch():
    # After batch 1 the watermark is 70s - 30s = 40s.
    batches = [
        [t(70_000, 1.0)],
        [t(39_999, 2.0), t(40_000, 3.0), t(5_000, 4.0)],
    ]
    out = aggregate_batches(batches, [10_000, 60_000], watermark_ms=30_000)
    dropped = sorted((tick.ts - T0, w) for tick, w in out.dropped)
    # [30s,40s) ends at the watermark: dropped; [40s,50s) is still open; the minute [0,60s)
    # ends after 40s, so every tick still counts there.
    assert dropped == [(5_000, 10_000), (39_999, 10_000)]
    assert out.late_groups == 2
    assert out.aggregates[("AAPL", 60_000, T0)].count == 3
    assert ("AAPL", 10_000, T0 + 40_000) in out.aggregates


def test_the_watermark_is_set_by_earlier_batches_only():
    same_batch = aggregate_batches([[t(100_000, 1.0), t(0, 2.0)]], [10_000], 30_000)
    assert same_batch.dropped == []
    later = aggregate_batches([[t(100_000, 1.0)], [t(0, 2.0)]], [10_000], 30_000)
    assert len(later.dropped) == 1


def test_differences_uses_the_tolerance_only_for_avg_and_vwap():
    (agg,) = aggregate([t(0, 10.0)], [60_000]).values()
    key = ("AAPL", 60_000, T0)
    from dataclasses import replace

    assert differences({key: agg}, {key: replace(agg, avg=10.0 * (1 + 1e-12))}) == []
    assert differences({key: agg}, {key: replace(agg, avg=10.001)})
    assert differences({key: agg}, {key: replace(agg, open=10.0 + 1e-12)})
    assert differences({key: agg}, {}) == [f"missing {key}"]


def test_latest_keeps_the_last_value_per_identity():
    first = aggregate([t(0, 1.0)], [60_000])
    second = aggregate([t(0, 1.0), t(1, 2.0)], [60_000])
    final = latest([*first.values(), *second.values()])
    assert list(final.values()) == list(second.values())


def test_late_groups_count_one_row_per_window_and_batch_like_spark():
    batches = [[t(200_000, 1.0)], [t(1_000, 1.0), t(2_000, 2.0), t(15_000, 3.0)]]
    out = aggregate_batches(batches, [10_000], watermark_ms=30_000)
    assert len(out.dropped) == 3
    assert out.late_groups == 2  # [0,10s) twice, [10s,20s) once
