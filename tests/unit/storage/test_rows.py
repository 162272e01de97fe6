from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from common.contract import Aggregate, Tick
from storage import rows

T0 = int(datetime(2025, 8, 27, 23, 59, 59, 999_000, tzinfo=timezone.utc).timestamp() * 1000)


def tick(ts=T0, seq=0, symbol="AAPL", price=1.0):
    return Tick(symbol, price, 1, ts, "test", seq)


def agg(count, close=1.0, start=T0 - T0 % 60_000):
    return Aggregate("AAPL", 60_000, start, start + 60_000, 1.0, 2.0, 0.5, close, 1.0, 1.0, 9,
                     count)  # fmt: skip


def test_day_is_the_utc_date_of_the_event_time():
    assert str(rows.utc_day(T0)) == "2025-08-27"
    assert str(rows.utc_day(T0 + 1)) == "2025-08-28"
    assert rows.tick_values(tick(), 0)[1] == rows.utc_day(T0)


def test_latest_timestamp_orders_ticks_by_event_time_then_seq():
    assert rows.latest_timestamp(tick(T0, 0)) == T0 * 1000
    assert rows.latest_timestamp(tick(T0, 5)) < rows.latest_timestamp(tick(T0 + 1, 0))
    assert rows.latest_timestamp(tick(T0, 1)) > rows.latest_timestamp(tick(T0, 0))
    # Beyond 999 the slot saturates rather than spilling into the next millisecond.
    assert rows.latest_timestamp(tick(T0, 5000)) < rows.latest_timestamp(tick(T0 + 1, 0))


@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 2000)), min_size=1, max_size=30))
def test_newest_per_symbol_is_the_max_event_time_whatever_the_order(pairs):
    ticks = [tick(T0 + d, s) for d, s in pairs]
    newest = rows.newest_per_symbol(ticks)
    assert len(newest) == 1
    best = max(rows.latest_timestamp(t) for t in ticks)
    assert rows.latest_timestamp(newest[0]) == best


def test_aggregate_emissions_with_more_ticks_win_in_any_order():
    first, second, final = agg(3, close=1.1), agg(7, close=1.2), agg(9, close=1.3)
    assert rows.aggregate_timestamp(final) > rows.aggregate_timestamp(second)
    assert rows.final_aggregates([final, first, second]) == [final]
    assert rows.final_aggregates([first, second, final]) == [final]


def test_redelivered_ticks_collapse_and_same_millisecond_ticks_do_not():
    ticks = [tick(T0, 0), tick(T0, 1), tick(T0, 0), tick(T0 - 5, 0)]
    unique = rows.unique_ticks(ticks)
    assert sorted(t.identity for t in unique) == [
        ("AAPL", T0 - 5, 0), ("AAPL", T0, 0), ("AAPL", T0, 1),
    ]  # fmt: skip


def test_partitions_are_chunked_by_symbol_and_day():
    ticks = [tick(T0 - i, 0, "A") for i in range(5)] + [tick(T0 + 1 + i, 0, "A") for i in range(3)]
    ticks += [tick(T0 - i, 0, "B") for i in range(2)]
    chunks = list(rows.by_partition(ticks, 2))
    assert sorted(len(c) for c in chunks) == [1, 1, 2, 2, 2, 2]
    for chunk in chunks:
        assert len({(t.symbol, t.ts // rows.DAY_MS) for t in chunk}) == 1
    assert sum(len(c) for c in chunks) == len(ticks)
