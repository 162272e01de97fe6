"""The dashboard API's parameter checks: every refusal says what to send instead (no services)."""

from __future__ import annotations

import pytest

from common.contract import EARLIEST_TS_MS
from dashboard import params
from dashboard.params import DAY_MS, ParamError

NOW = 1_764_000_000_000  # 2025-11-24T16:00:00Z
WINDOWS = (10_000, 60_000, 300_000)


def bars(**query: str) -> params.BarsQuery:
    return params.bars_query(
        list(query.items()), windows_ms=WINDOWS, default_window_ms=60_000, now_ms=NOW
    )


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(ParamError) as e:
        call(*args, **kwargs)
    return str(e.value)


def test_bars_defaults_to_one_minute_and_the_last_240_windows():
    q = bars(symbol="AAPL")
    assert (q.symbol, q.window_ms, q.end_ms) == ("AAPL", 60_000, NOW)
    assert q.end_ms - q.start_ms == params.DEFAULT_BARS * 60_000


def test_bars_reads_iso_times_epoch_ms_and_window_spellings():
    q = bars(symbol="msft", window="10s", **{"from": "2025-11-24T15:00:00Z", "to": str(NOW)})
    assert (q.symbol, q.window_ms) == ("MSFT", 10_000)
    assert q.start_ms == NOW - 3_600_000
    assert bars(symbol="A", window="300000").window_ms == 300_000
    assert bars(symbol="A", window="5m").window_ms == 300_000


@pytest.mark.parametrize("window", ["2m", "1h", "abc", "60001", "-1m", "1.5m", "0"])
def test_bars_refuses_a_window_size_that_is_not_computed(window):
    message = refused(bars, symbol="AAPL", window=window)
    assert "is not one of the window sizes computed: 10s, 1m, 5m" in message


@pytest.mark.parametrize(
    "symbol", ["aapl;drop", "A" * 16, "AAPL'", "<script>", "AA PL", "ÄAPL", "'; --"]
)
def test_bars_refuses_a_symbol_outside_the_contract(symbol):
    assert "is not valid" in refused(bars, symbol=symbol)


def test_a_missing_symbol_is_named():
    assert "'symbol' is required" in refused(bars)
    assert "'symbol' is required" in refused(params.ticks_query, [("last", "5")])


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2025-11-24T15:00:00Z", "2025-11-24T14:00:00Z", "the range is empty"),
        ("2025-11-24T15:00:00Z", "2025-11-24T15:00:00Z", "the range is empty"),
        ("yesterday", None, "is not a time"),
        ("2025-13-01", None, "is not a time"),
        ("1999-12-31T23:59:59Z", None, "out of range"),
        (str(NOW + 2 * DAY_MS), None, "out of range"),
        ("9" * 40, None, "out of range"),
    ],
)
def test_bars_refuses_a_bad_range(start, end, expected):
    query = {"symbol": "AAPL", "window": "5m", "from": start}
    if end is not None:
        query["to"] = end
    assert expected in refused(bars, **query)


def test_bars_bounds_the_span_and_the_number_of_bars():
    assert "at most 31 days" in refused(
        bars, symbol="AAPL", window="5m", **{"from": str(NOW - 32 * DAY_MS)}
    )
    # 8 days of 1-minute bars is 11,520 bars: over the limit although under 31 days.
    message = refused(bars, symbol="AAPL", window="1m", **{"from": str(NOW - 8 * DAY_MS)})
    assert "at most 10000" in message
    # A day of 1-minute bars is fine.
    q = bars(symbol="AAPL", window="1m", **{"from": str(NOW - DAY_MS)})
    assert q.end_ms - q.start_ms == DAY_MS


def test_unknown_repeated_and_oversized_parameters_are_refused():
    assert "unknown parameter 'symbl'" in refused(
        params.bars_query, [("symbl", "AAPL")], windows_ms=WINDOWS, default_window_ms=60_000,
        now_ms=NOW,
    )  # fmt: skip
    assert "given twice" in refused(params.ticks_query, [("symbol", "A"), ("symbol", "B")])
    assert "too long" in refused(params.ticks_query, [("symbol", "A" * 65)])
    assert "takes no parameters" in refused(params.no_params, [("x", "1")])


@pytest.mark.parametrize("last", ["0", "-1", "1001", "ten", "1e3", " 5", "5.0"])
def test_ticks_last_must_be_1_to_1000(last):
    assert "from 1 to 1000" in refused(params.ticks_query, [("symbol", "AAPL"), ("last", last)])


def test_ticks_defaults_and_bounds():
    assert params.ticks_query([("symbol", "aapl")]) == params.TicksQuery("AAPL", 100)
    assert params.ticks_query([("symbol", "AAPL"), ("last", "1000")]).last == 1000


def test_live_symbol_is_optional_but_checked():
    assert params.live_query([]).symbol is None
    assert params.live_query([("symbol", "^gspc")]).symbol == "^GSPC"
    assert "is not valid" in refused(params.live_query, [("symbol", "A/B")])


def test_days_between_lists_every_utc_day_a_range_touches():
    day = NOW // DAY_MS
    assert params.days_between(NOW - 1, NOW) == [day]
    assert params.days_between(day * DAY_MS - 1, day * DAY_MS + 1) == [day - 1, day]
    # An end exactly at midnight does not touch the next day.
    assert params.days_between(day * DAY_MS - DAY_MS, day * DAY_MS) == [day - 1]
    assert params.days_between(EARLIEST_TS_MS, EARLIEST_TS_MS + 1) == [EARLIEST_TS_MS // DAY_MS]
