from datetime import datetime, timezone

import pytest

from storage.query import (
    LATEST,
    QueryError,
    QueryRequest,
    build_request,
    days_newest_first,
    parse_time,
    to_table,
)

NOW = int(datetime(2025, 8, 27, 0, 30, tzinfo=timezone.utc).timestamp() * 1000)
DAY = 86_400_000


def test_last_counts_back_from_now_and_symbols_are_upper_cased():
    r = build_request("aapl", now_ms=NOW, last_ms=3_600_000)
    assert r == QueryRequest("AAPL", NOW - 3_600_000, NOW, None, 100)


def test_default_range_is_the_last_hour():
    r = build_request("MSFT", now_ms=NOW)
    assert (r.start_ms, r.end_ms) == (NOW - 3_600_000, NOW)


def test_from_to_accept_iso_with_offsets_and_read_naive_times_as_utc():
    r = build_request("AAPL", now_ms=NOW, start="2025-08-26T20:00:00-04:00",
                      end="2025-08-27T00:10:00", window_ms=60_000)  # fmt: skip
    assert r.start_ms == NOW - 30 * 60_000
    assert r.end_ms == NOW - 20 * 60_000
    assert r.window_ms == 60_000
    assert parse_time("1756254600000") == 1756254600000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "BAD SYMBOL"}, "not valid"),
        ({"target": "$$$"}, "not valid"),
        ({"target": "AAPL", "start": "2025-08-27T01:00Z", "end": "2025-08-27T00:00Z"}, "empty"),
        ({"target": "AAPL", "start": "yesterday"}, "not a time"),
        ({"target": "AAPL", "last_ms": 32 * DAY}, "at most 31d"),
        ({"target": "AAPL", "last_ms": 60_000, "end": "2025-08-27T00:00Z"}, "--last"),
        ({"target": "latest", "window_ms": 60_000}, "no range"),
    ],
)
def test_bad_symbols_and_ranges_get_a_clear_error(kwargs, message):
    with pytest.raises(QueryError, match=message):
        build_request(now_ms=NOW, **kwargs)


def test_a_range_across_midnight_reads_both_days_newest_first():
    assert days_newest_first(NOW - 3_600_000, NOW) == [NOW // DAY, NOW // DAY - 1]
    assert days_newest_first(NOW - 60_000, NOW) == [NOW // DAY]
    # The end is exclusive: a range ending exactly at midnight does not touch the next day.
    midnight = NOW - NOW % DAY
    assert days_newest_first(midnight - 60_000, midnight) == [midnight // DAY - 1]


def test_latest_table_lists_each_symbol_with_its_time():
    rows = [{"symbol": "AAPL", "ts": NOW, "seq": 0, "price": 230.49, "volume": 5,
             "source": "sim"}]  # fmt: skip
    text = to_table(rows, QueryRequest(LATEST))
    assert "AAPL" in text and "230.49" in text and "2025-08-27T00:30:00.000+00:00" in text
    assert text.endswith("(1 rows)")
    empty = to_table([], QueryRequest("AAPL", NOW - 60_000, NOW, 60_000))
    assert empty.startswith("no 1m aggregates for AAPL")
