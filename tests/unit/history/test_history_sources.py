"""Each source's history, parsed from its real formats (the stand-in's and hand-written ones)."""

import json
import threading

import pytest

from common.contract import Bar
from producer.backfill import windows
from producer.sources.base import DAY_MS, Failed, NoData, Rejected
from producer.sources.replay import ReplaySource
from producer.sources.simulated import SimulatedSource, simulated_bars, simulated_ticks
from producer.sources.stooq import StooqSource, parse_history
from producer.sources.yahoo import YahooSource, parse_bars
from stack import history_stand_in as market

NOW_S = 1_796_400_000  # a Friday, 2026-12-04 16:40 UTC
MINUTE = 60_000


def chart(timestamps, quote, gmtoffset=-18000) -> bytes:
    meta = {"symbol": "AAPL", "regularMarketPrice": 230.0, "regularMarketTime": NOW_S,
            "gmtoffset": gmtoffset, "exchangeTimezoneName": "America/New_York"}  # fmt: skip
    result = {"meta": meta, "timestamp": timestamps, "indicators": {"quote": [quote]}}
    return json.dumps({"chart": {"result": [result], "error": None}}).encode()


def test_yahoo_bars_leave_out_the_minutes_without_trades():
    body = chart(
        [1724765400, 1724765460, 1724765520],
        {"open": [228.6, None, 229.0], "high": [229.1, None, 229.4],
         "low": [228.3, None, 228.9], "close": [229.0, None, 229.2],
         "volume": [512300, None, None]},
    )  # fmt: skip
    items = list(parse_bars("AAPL", "1m", 200, body))
    assert items == [
        Bar("AAPL", "1m", 1724765400_000, 228.6, 229.1, 228.3, 229.0, 512300, "yahoo"),
        Bar("AAPL", "1m", 1724765520_000, 229.0, 229.4, 228.9, 229.2, 0, "yahoo"),
    ]


def test_yahoo_daily_bars_are_dated_in_the_exchanges_zone():
    # 2024-08-27 00:30 UTC is still the 26th in New York: the bar is the 26th's.
    body = chart([1724718600], {"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
                                "volume": [7]})  # fmt: skip
    [b] = parse_bars("AAPL", "1d", 200, body)
    assert b.start == 1724630400_000  # 2024-08-26T00:00Z
    assert b.validated().start == b.start


def test_yahoo_history_from_the_stand_in_spans_several_sessions():
    period = {"period1": [str(NOW_S - 5 * 86400)], "period2": [str(NOW_S)], "interval": ["1m"]}
    status, body = market.yahoo_answer("AAPL", period, NOW_S)
    items = list(parse_bars("AAPL", "1m", status, body))
    assert all(isinstance(i, Bar) for i in items)
    days = {i.start // DAY_MS for i in items}
    assert len(days) == 5  # Monday to Friday, the weekend has none
    for b in items:
        assert b.validated(NOW_S * 1000) == b
    nulls = len(json.loads(body)["chart"]["result"][0]["timestamp"]) - len(items)
    assert nulls > 0  # the stand-in's no-trade minutes were left out, not made up


@pytest.mark.parametrize(
    ("symbol", "kind", "why"),
    [
        ("NODATA", NoData, "no 1m bars"),
        ("ZZZZ", Rejected, "unknown symbol"),
        ("GARBAGE", Rejected, "not a chart"),
        ("RAGGED", Rejected, "different lengths"),
    ],
)
def test_yahoo_answers_without_usable_bars_say_why(symbol, kind, why):
    period = {"period1": [str(NOW_S - 86400)], "period2": [str(NOW_S)], "interval": ["1m"]}
    status, body = market.yahoo_answer(symbol, period, NOW_S)
    [item] = parse_bars(symbol, "1m", status, body)
    assert isinstance(item, kind) and why in item.reason


def test_yahoo_bad_prices_are_handed_on_for_the_contract_to_refuse():
    period = {"period1": [str(NOW_S - 86400)], "period2": [str(NOW_S)], "interval": ["1m"]}
    status, body = market.yahoo_answer("BADPRICE", period, NOW_S)
    items = list(parse_bars("BADPRICE", "1m", status, body))
    refused = []
    for b in items:
        try:
            b.validated(NOW_S * 1000)
        except ValueError as e:
            refused.append(str(e))
    assert len(refused) == 3, refused


def test_stooq_history_csv_and_its_no_data():
    body = b"Date,Open,High,Low,Close,Volume\r\n2025-08-26,227.9,229.3,226.0,229.31,54575100\r\n"
    assert list(parse_history("AAPL", body)) == [
        Bar("AAPL", "1d", 1756166400_000, 227.9, 229.3, 226.0, 229.31, 54575100, "stooq")
    ]
    index = b"Date,Open,High,Low,Close\n2025-08-26,6400.1,6466.9,6395.2,6465.94\n"
    assert [b.volume for b in parse_history("^SPX", index)] == [0]
    [empty] = parse_history("ZZZZ", b"No data")
    assert isinstance(empty, NoData)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>limit</html>", "not the daily CSV"),
        (b"\xff\xfe", "not CSV text"),
        (b"Date,Open,High,Low,Close,Volume\n2025-13-45,1,1,1,1,1\n", "does not parse"),
        (b"Date,Open,High,Low,Close,Volume\n2025-08-26,1,1\n", "has 3 fields"),
    ],
)
def test_stooq_history_that_is_not_the_csv_is_refused(body, why):
    items = list(parse_history("AAPL", body))
    assert isinstance(items[0], Rejected) and why in items[0].reason


def test_the_simulated_past_is_the_same_for_every_run_and_ends_where_the_live_walk_starts():
    start = 1_796_400_000_000
    first = list(simulated_bars(42, "AAPL", "1m", start - DAY_MS, start))
    again = list(simulated_bars(42, "AAPL", "1m", start - DAY_MS, start))
    assert first == again and len(first) == 1440
    assert all(b.validated(start) == b for b in first)
    assert [b.start for b in first] == list(range(start - DAY_MS, start, MINUTE))
    # Consecutive bars join: each opens where the one before closed.
    assert all(a.close == b.open for a, b in zip(first, first[1:], strict=False))
    [tick] = simulated_ticks(42, ["AAPL"], 1, start)
    assert tick.price == first[-1].close
    assert list(simulated_bars(7, "AAPL", "1m", start - DAY_MS, start)) != first


def test_sources_without_an_interval_say_so_and_never_raise():
    source = StooqSource(http=None, base_url="http://unused")
    [item] = source.bars("AAPL", "1m", 0, MINUTE)
    assert isinstance(item, Failed) and "serves: 1d" in item.reason

    class Broken(YahooSource):
        def fetch_bars(self, *args):
            raise KeyError("surprise")

    [item] = Broken(http=None, base_url="http://unused").bars("AAPL", "1m", 0, MINUTE)
    assert isinstance(item, Failed) and "unexpected KeyError" in item.reason


def test_requests_are_cut_to_what_the_source_serves():
    yahoo = YahooSource(http=None, base_url="http://unused")
    now = 1_796_400_030_000
    spans = list(windows(yahoo, "1m", 60 * DAY_MS, now))
    end = now - now % MINUTE
    # 1m bars go 30 days back, at most 7 days a request; only complete minutes.
    assert spans[0][0] == end - 30 * DAY_MS and spans[-1][1] == end
    assert all(b - a <= 7 * DAY_MS for a, b in spans) and len(spans) == 5
    assert all(a2 == b1 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
    sim = SimulatedSource(threading.Event(), 42, 10)
    assert list(windows(sim, "1d", 365 * DAY_MS, now)) == [
        (now - now % DAY_MS - 365 * DAY_MS, now - now % DAY_MS)
    ]


def test_replay_history_is_the_files_ticks_as_bars(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(
        "symbol,ts,price,volume\n"
        "AAPL,1724765400000,228.6,10\nAAPL,1724765430000,229.5,5\nMSFT,1724765431000,400,1\n"
        "AAPL,1724765459999,228.1,2\nAAPL,1724765460000,0,9\nAAPL,1724765470000,228.4,3\n"
    )
    source = ReplaySource(threading.Event(), f, 0)
    assert list(source.bars("AAPL", "1m", 0, 0)) == [
        Bar("AAPL", "1m", 1724765400000, 228.6, 229.5, 228.1, 228.1, 17, "replay"),
        Bar("AAPL", "1m", 1724765460000, 228.4, 228.4, 228.4, 228.4, 3, "replay"),
    ]
    [none] = source.bars("GOOG", "1m", 0, 0)
    assert isinstance(none, NoData)
