"""Each internet source against a local server speaking its real format, errors included."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

import pytest

from common.contract import Tick
from common.settings import Secret
from producer.http_client import HttpClient
from producer.sources.base import Failed, NoData, Rejected
from producer.sources.finnhub import FinnhubSource
from producer.sources.stooq import StooqSource
from producer.sources.yahoo import YahooSource
from tests.unit.producer.servers import (
    FINNHUB_ZEROS,
    YAHOO_NOT_FOUND,
    Answer,
    finnhub_quote,
    stooq_csv,
    yahoo_chart,
)


class Waits:
    """Stands in for the pause between retries: records each one instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> bool:
        self.delays.append(delay)
        return False


def http(retries: int = 2, timeout_s: float = 5.0, waits: Waits | None = None) -> HttpClient:
    return HttpClient(
        threading.Event(), timeout_s=timeout_s, retries=retries, backoff_s=0.01, wait=waits
    )


# --- yahoo -----------------------------------------------------------------------------------


def test_yahoo_reads_price_time_and_latest_non_null_volume(source_server):
    source_server.script(
        "/v8/finance/chart/AAPL", Answer(body=yahoo_chart("AAPL", 230.49, 1724788801))
    )
    items = list(YahooSource(http(), source_server.url).fetch(["AAPL"]))
    assert items == [Tick("AAPL", 230.49, 512300, 1724788801000, "yahoo")]
    request = source_server.requests_to("/v8/finance/chart/AAPL")[0]
    assert request.query == {"range": ["1d"], "interval": ["1m"]}
    assert "Mozilla/5.0" in request.headers["User-Agent"]


def test_yahoo_null_price_is_no_data_and_null_volumes_give_zero(source_server):
    source_server.script("/v8/finance/chart/AAPL", Answer(body=yahoo_chart("AAPL", None, None)))
    source_server.script(
        "/v8/finance/chart/MSFT",
        Answer(body=yahoo_chart("MSFT", 415.5, 1724788801, volumes=(None, None))),
    )
    items = list(YahooSource(http(), source_server.url).fetch(["AAPL", "MSFT"]))
    assert isinstance(items[0], NoData) and items[0].symbol == "AAPL"
    assert items[1] == Tick("MSFT", 415.5, 0, 1724788801000, "yahoo")


def test_yahoo_unknown_symbol_is_rejected_with_its_error_body(source_server):
    source_server.script("/v8/finance/chart/NOPE", Answer(404, YAHOO_NOT_FOUND))
    [item] = YahooSource(http(), source_server.url).fetch(["NOPE"])
    assert isinstance(item, Rejected)
    assert "unknown symbol NOPE" in item.reason
    assert item.symbol == "NOPE" and b"Not Found" in item.raw


@pytest.mark.parametrize(
    "body", [b"<html>Will be right back</html>", b'{"chart": {"result": []}}', b"\xff\xfe"]
)
def test_yahoo_malformed_body_is_rejected_not_raised(source_server, body):
    source_server.script("/v8/finance/chart/AAPL", Answer(body=body))
    [item] = YahooSource(http(), source_server.url).fetch(["AAPL"])
    assert isinstance(item, Rejected)
    assert item.raw.startswith(body[:10])


def test_yahoo_one_failing_symbol_does_not_stop_the_others(source_server):
    source_server.script("/v8/finance/chart/AAPL", Answer(500, b"oops"))
    source_server.script(
        "/v8/finance/chart/MSFT", Answer(body=yahoo_chart("MSFT", 415.5, 1724788801))
    )
    items = list(YahooSource(http(retries=1), source_server.url).fetch(["AAPL", "MSFT"]))
    assert isinstance(items[0], Failed) and "HTTP 500" in items[0].reason
    assert len(source_server.requests_to("/v8/finance/chart/AAPL")) == 2  # first try + 1 retry
    assert isinstance(items[1], Tick) and items[1].symbol == "MSFT"


def test_yahoo_429_with_retry_after_is_waited_out(source_server):
    source_server.script(
        "/v8/finance/chart/AAPL",
        Answer(429, b"Too Many Requests", {"Retry-After": "1"}),
        Answer(body=yahoo_chart("AAPL", 230.49, 1724788801)),
    )
    waits = Waits()
    [item] = YahooSource(http(waits=waits), source_server.url).fetch(["AAPL"])
    assert isinstance(item, Tick)
    assert len(source_server.requests_to("/v8/finance/chart/AAPL")) == 2
    assert waits.delays == [1.0]


def test_yahoo_timeout_is_a_failure_of_that_symbol(source_server):
    source_server.script("/v8/finance/chart/AAPL", Answer(body=b"{}", delay_s=30.0))
    [item] = YahooSource(http(retries=0, timeout_s=0.2), source_server.url).fetch(["AAPL"])
    assert isinstance(item, Failed) and "no answer within the 0.2s deadline" in item.reason
    assert item.reason.startswith("yahoo: ") and item.symbols == ("AAPL",)


# --- stooq -----------------------------------------------------------------------------------


def test_stooq_asks_several_symbols_at_once_and_reads_warsaw_time(source_server):
    source_server.script(
        "/q/l/",
        Answer(
            body=stooq_csv(
                "AAPL.US,2025-08-27,22:00:01,228.58,230.9,228.295,230.49,30134069",
                "BMW.DE,2025-01-15,17:35:00,80.1,81.0,79.9,80.5,1200",
            )
        ),
    )
    items = list(StooqSource(http(), source_server.url).fetch(["AAPL", "BMW.DE"]))
    summer = int(
        datetime(2025, 8, 27, 20, 0, 1, tzinfo=timezone.utc).timestamp() * 1000
    )  # CEST = UTC+2
    winter = int(
        datetime(2025, 1, 15, 16, 35, 0, tzinfo=timezone.utc).timestamp() * 1000
    )  # CET = UTC+1
    assert items == [
        Tick("AAPL", 230.49, 30134069, summer, "stooq"),
        Tick("BMW.DE", 80.5, 1200, winter, "stooq"),
    ]
    [request] = source_server.requests_to("/q/l/")
    assert request.raw_query == "s=aapl.us+bmw.de&f=sd2t2ohlcv&h&e=csv"


def test_stooq_n_d_row_is_an_unknown_symbol(source_server):
    source_server.script(
        "/q/l/",
        Answer(
            body=stooq_csv(
                "AAPL.US,2025-08-27,22:00:01,228.58,230.9,228.295,230.49,30134069",
                "NOPE.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D",
            )
        ),
    )
    items = list(StooqSource(http(), source_server.url).fetch(["AAPL", "NOPE"]))
    assert isinstance(items[0], Tick)
    assert isinstance(items[1], Rejected) and items[1].symbol == "NOPE"
    assert "N/D" in items[1].reason and items[1].raw.startswith(b"NOPE.US,N/D")


@pytest.mark.parametrize(
    "body", [b"Exceeded the daily hits limit", b"<html><body>maintenance</body></html>"]
)
def test_stooq_answer_that_is_not_the_csv_is_rejected(source_server, body):
    source_server.script("/q/l/", Answer(body=body))
    [item] = StooqSource(http(), source_server.url).fetch(["AAPL"])
    assert isinstance(item, Rejected) and item.raw == body


def test_stooq_garbled_row_is_rejected_and_missing_row_is_a_failure(source_server):
    source_server.script(
        "/q/l/", Answer(body=stooq_csv("AAPL.US,2025-08-27,22:00:01,228.58,230.9,228.295,abc,1"))
    )
    items = list(StooqSource(http(), source_server.url).fetch(["AAPL", "MSFT"]))
    assert isinstance(items[0], Rejected) and items[0].symbol == "AAPL"
    assert isinstance(items[1], Failed) and items[1].symbols == ("MSFT",)


def test_stooq_500_then_success_is_retried(source_server):
    good = stooq_csv("AAPL.US,2025-08-27,22:00:01,228.58,230.9,228.295,230.49,30134069")
    source_server.script("/q/l/", Answer(503, b"busy"), Answer(body=good))
    [item] = StooqSource(http(), source_server.url).fetch(["AAPL"])
    assert isinstance(item, Tick)
    assert len(source_server.requests_to("/q/l/")) == 2


# --- finnhub ---------------------------------------------------------------------------------


def test_finnhub_sends_the_key_in_a_header_and_never_logs_it(source_server, caplog):
    source_server.script("/api/v1/quote", Answer(body=finnhub_quote(261.74, 1582641000)))
    caplog.set_level(logging.DEBUG)
    source = FinnhubSource(http(), source_server.url, Secret("sekrit-key-123"))
    [item] = source.fetch(["AAPL"])
    assert item == Tick("AAPL", 261.74, 0, 1582641000000, "finnhub")
    [request] = source_server.requests_to("/api/v1/quote")
    assert request.headers["X-Finnhub-Token"] == "sekrit-key-123"
    assert request.query == {"symbol": ["AAPL"]}  # not in the URL, where logs and proxies see it
    assert "sekrit" not in caplog.text
    assert "sekrit" not in repr(Secret("sekrit-key-123"))


def test_finnhub_all_zeros_is_no_data(source_server):
    source_server.script("/api/v1/quote", Answer(body=FINNHUB_ZEROS))
    [item] = FinnhubSource(http(), source_server.url, Secret("k")).fetch(["NOPE"])
    assert isinstance(item, NoData) and item.symbol == "NOPE"


def test_finnhub_bad_key_says_what_to_check(source_server, caplog):
    source_server.script("/api/v1/quote", Answer(401, b'{"error":"Invalid API key."}'))
    [item] = FinnhubSource(http(), source_server.url, Secret("wrong-key")).fetch(["AAPL"])
    assert isinstance(item, Failed) and "FINNHUB_API_KEY" in item.reason
    assert "wrong-key" not in item.reason


@pytest.mark.parametrize("body", [b"not json", b'{"error": "boom"}', b"[]"])
def test_finnhub_malformed_body_is_rejected(source_server, body):
    source_server.script("/api/v1/quote", Answer(body=body))
    [item] = FinnhubSource(http(), source_server.url, Secret("k")).fetch(["AAPL"])
    assert isinstance(item, Rejected) and item.raw == body


def test_finnhub_429_with_long_retry_after_cools_down_without_hammering(source_server):
    source_server.script(
        "/api/v1/quote", Answer(429, b'{"error":"API limit reached"}', {"Retry-After": "120"})
    )
    source = FinnhubSource(http(), source_server.url, Secret("k"))
    items = list(source.fetch(["AAPL", "MSFT"]))
    assert all(isinstance(i, Failed) for i in items)
    assert "Retry-After 120s" in items[0].reason
    assert "asked us to wait" in items[1].reason
    # One request only: the second symbol waited for the Retry-After instead of asking again.
    assert len(source_server.requests_to("/api/v1/quote")) == 1
