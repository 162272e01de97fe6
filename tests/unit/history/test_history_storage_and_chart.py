"""Where bars are stored (bounded partitions) and how a chart joins history and live candles."""

from datetime import date

import pytest

from common.buckets import bar_bucket_day, bar_buckets
from common.contract import Bar
from dashboard import candles
from dashboard.params import DAY_MS, ParamError, candles_query
from storage.query import QueryError, build_request
from storage.rows import bar_values, bars_by_partition, unique_bars

EPOCH = date(1970, 1, 1)


def day_of(d: date) -> int:
    return (d - EPOCH).days


def ms(d: date) -> int:
    return day_of(d) * DAY_MS


@pytest.mark.parametrize(
    ("interval", "when", "bucket"),
    [
        ("1m", date(2026, 12, 4), date(2026, 12, 4)),
        ("5m", date(2026, 12, 4), date(2026, 12, 1)),
        ("1d", date(2026, 12, 4), date(2026, 1, 1)),
        ("1d", date(1987, 10, 19), date(1987, 1, 1)),
    ],
)
def test_each_interval_has_its_bucket(interval, when, bucket):
    assert bar_bucket_day(interval, ms(when) + 3_600_000) == day_of(bucket)


def test_no_bucket_holds_more_than_a_bounded_number_of_bars():
    # A day of 1m bars, a month of 5m bars, a year of 1d bars at most.
    for interval, step, span in (("1m", 60_000, 3), ("5m", 300_000, 70), ("1d", DAY_MS, 800)):
        start = ms(date(2024, 1, 1))
        sizes: dict[int, int] = {}
        for t in range(start, start + span * DAY_MS, step):
            b = bar_bucket_day(interval, t)
            sizes[b] = sizes.get(b, 0) + 1
        assert max(sizes.values()) <= {"1m": 1440, "5m": 8928, "1d": 366}[interval]


def test_buckets_of_a_range_newest_first():
    start, end = ms(date(2026, 11, 28)), ms(date(2026, 12, 2)) + 5
    assert bar_buckets("1m", start, end) == [day_of(date(2026, 12, d)) for d in (2, 1)] + [
        day_of(date(2026, 11, d)) for d in (30, 29, 28)
    ]
    assert bar_buckets("5m", start, end) == [day_of(date(2026, 12, 1)), day_of(date(2026, 11, 1))]
    assert bar_buckets("1d", ms(date(2024, 6, 1)), end) == [
        day_of(date(y, 1, 1)) for y in (2026, 2025, 2024)
    ]


def test_a_bar_delivered_twice_is_one_row_and_rows_group_by_partition():
    a = Bar("AAPL", "1m", ms(date(2026, 12, 4)), 1.0, 2.0, 0.5, 1.5, 10, "yahoo")
    b = Bar("AAPL", "1m", a.start + 60_000, 1.5, 2.0, 1.0, 1.2, 3, "yahoo")
    next_day = Bar("AAPL", "1m", a.start + DAY_MS, 1.2, 1.2, 1.2, 1.2, 1, "yahoo")
    assert unique_bars([a, b, a]) == [a, b]
    assert [len(c) for c in bars_by_partition([a, b, next_day], 100)] == [2, 1]
    assert bar_values(a)[2].days_from_epoch == day_of(date(2026, 12, 4))


def test_the_query_cli_reads_bars_over_long_ranges_only_as_daily_ones():
    now = ms(date(2026, 12, 5))
    request = build_request("aapl", now_ms=now, last_ms=30 * DAY_MS, bars="1d")
    assert (request.target, request.bars, request.end_ms - request.start_ms) == (
        "AAPL", "1d", 30 * DAY_MS
    )  # fmt: skip
    with pytest.raises(QueryError, match="at most 31d"):
        build_request("AAPL", now_ms=now, last_ms=60 * DAY_MS, bars="1m")
    with pytest.raises(QueryError, match="not both"):
        build_request("AAPL", now_ms=now, window_ms=60_000, bars="1m")


def live(t, close=10.0):
    return (t, close, close, close, close, close, 5, 2, False)


def hist(t, close=9.0):
    return (t, close, close + 1, close - 1, close, None, 7, None, True)


def test_a_live_aggregate_wins_over_the_history_bar_of_its_window():
    joined = candles.join([live(120_000)], [hist(0), hist(60_000), hist(120_000)])
    assert [r[0] for r in joined] == [0, 60_000, 120_000]
    assert [r[-1] for r in joined] == [True, True, False]


def test_minutes_roll_up_into_coarser_candles():
    rows = [hist(0, 5.0), hist(60_000, 7.0), live(240_000, 6.0), hist(300_000, 8.0)]
    rolled = candles.roll_up(rows, 300_000)
    assert rolled == [
        (0, 5.0, 8.0, 4.0, 6.0, None, 19, None, False),
        (300_000, 8.0, 9.0, 7.0, 8.0, None, 7, None, True),
    ]


def test_the_chart_api_takes_daily_candles_for_a_year_but_no_more():
    now = ms(date(2026, 12, 5))
    windows = (10_000, 60_000)
    q = candles_query([("symbol", "aapl"), ("window", "1d"), ("from", str(now - 365 * DAY_MS))],
                      windows_ms=windows, default_window_ms=60_000, now_ms=now)  # fmt: skip
    assert (q.symbol, q.interval_ms) == ("AAPL", DAY_MS)
    q5 = candles_query([("symbol", "MSFT"), ("window", "5m"), ("from", str(now - 5 * DAY_MS))],
                       windows_ms=windows, default_window_ms=60_000, now_ms=now)  # fmt: skip
    assert q5.interval_ms == 300_000
    with pytest.raises(ParamError, match="at most"):
        candles_query([("symbol", "AAPL"), ("window", "1d"), ("from", str(now - 500 * DAY_MS))],
                      windows_ms=windows, default_window_ms=60_000, now_ms=now)  # fmt: skip
    with pytest.raises(ParamError, match="not one of"):
        candles_query([("symbol", "AAPL"), ("window", "2h")], windows_ms=windows,
                      default_window_ms=60_000, now_ms=now)  # fmt: skip
