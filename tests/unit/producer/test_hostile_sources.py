"""The polled sources against hostile answers: nothing escapes a round, every refusal is named.

Each answer goes through real HTTP from a local server; each tick a source hands over is then
judged as the publisher judges it (`Tick.validated`), which may refuse it with a ContractError and
nothing else. The fuzz tests feed each parser arbitrary bodies and arbitrary values in the real
formats' places.
"""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.contract import ContractError, Tick
from common.settings import Secret
from producer.http_client import HttpClient
from producer.sources.base import Failed, NoData, PolledSource, Rejected
from producer.sources.finnhub import FinnhubSource, parse_quote
from producer.sources.stooq import StooqSource, parse_quotes, stooq_symbol
from producer.sources.yahoo import YahooSource, parse_chart
from tests.unit.producer.servers import Answer, finnhub_quote, stooq_csv, yahoo_chart

ITEM_TYPES = (Tick, Rejected, NoData, Failed)
NOW_S = 1_724_788_801
STOOQ_ROW = "AAPL.US,2025-08-27,22:00:01,228.58,230.9,228.295,{price},{volume}"


def http(timeout_s: float = 5.0, retries: int = 1) -> HttpClient:
    return HttpClient(
        threading.Event(), timeout_s=timeout_s, retries=retries, backoff_s=0.01,
        wait=lambda _delay: False,
    )  # fmt: skip


def judge(item) -> str:
    """What the publisher would do with an item: 'tick', 'refused: <reason>' or the item kind."""
    assert isinstance(item, ITEM_TYPES), item
    if not isinstance(item, Tick):
        return type(item).__name__
    try:
        item.validated()
    except ContractError as e:  # the only refusal the contract documents
        return f"refused: {e}"
    return "tick"


def yahoo_doc(price, seconds, volumes=(100,)) -> dict:
    return json.loads(yahoo_chart("AAPL", 1.0, NOW_S, volumes=(1,))) | {
        "chart": {
            "result": [
                {
                    "meta": {"regularMarketPrice": price, "regularMarketTime": seconds},
                    "indicators": {"quote": [{"volume": list(volumes)}]},
                }
            ],
            "error": None,
        }
    }


def yahoo_body(price, seconds, volumes=(100,)) -> bytes:
    return json.dumps(yahoo_doc(price, seconds, volumes)).encode()


# --- hostile answers over HTTP ---------------------------------------------------------------

YAHOO_CASES = {
    "volume beyond a long": (yahoo_body(230.5, NOW_S, (10**20,)), "refused: volume"),
    "volume infinite": (yahoo_body(230.5, NOW_S, (float("inf"),)), "refused: volume"),
    "volume a string": (yahoo_body(230.5, NOW_S, ("lots",)), "refused: volume"),
    "volumes not a list": (yahoo_body(230.5, NOW_S, ()).replace(b"[]", b'{"a": 1}'), "refused"),
    "price NaN": (yahoo_body(float("nan"), NOW_S), "refused: price"),
    "price Infinity": (yahoo_body(float("inf"), NOW_S), "refused: price"),
    "price a huge integer": (yahoo_body(10**400, NOW_S), "refused: price"),
    "price a string": (yahoo_body("230.5", NOW_S), "refused: price"),
    "price a list": (yahoo_body([230.5], NOW_S), "refused: price"),
    "time a float": (yahoo_body(230.5, NOW_S + 0.5), "Rejected"),
    "time a huge integer": (yahoo_body(230.5, 10**30), "refused: ts"),
    "time negative": (yahoo_body(230.5, -5), "refused: ts"),
    "meta a list": (b'{"chart": {"result": [{"meta": [1, 2]}], "error": null}}', "Rejected"),
    "result a string": (b'{"chart": {"result": "x", "error": null}}', "Rejected"),
    "chart a number": (b'{"chart": 5}', "Rejected"),
    "not JSON": (b"\x00\xff garbage \x89PNG", "Rejected"),
    "deep nesting": (b"[" * 200_000 + b"]" * 200_000, "Rejected"),
    "error an object without code": (b'{"chart": {"error": {"x": [1]}}}', "Failed"),
    "duplicate fields": (b'{"chart": {"error": null, "error": null, "result": 1}}', "Rejected"),
}


@pytest.mark.parametrize("case", YAHOO_CASES)
def test_yahoo_hostile_answers_are_refused_with_the_symbol(source_server, case):
    body, expected = YAHOO_CASES[case]
    source_server.script("/v8/finance/chart/AAPL", Answer(body=body))
    [item] = YahooSource(http(), source_server.url).fetch(["AAPL"])
    assert judge(item).startswith(expected), (case, item)
    if isinstance(item, Rejected):
        assert item.symbol == "AAPL" and item.reason.startswith("yahoo: ")
    if isinstance(item, Tick):
        assert (item.symbol, item.source) == ("AAPL", "yahoo")


STOOQ_CASES = {
    "volume 1e999": (STOOQ_ROW.format(price="230.49", volume="1e999"), "refused: volume"),
    "volume NaN": (STOOQ_ROW.format(price="230.49", volume="nan"), "refused: volume"),
    "volume fractional": (STOOQ_ROW.format(price="230.49", volume="1.5"), "refused: volume"),
    "volume huge": (STOOQ_ROW.format(price="230.49", volume="9" * 30), "refused: volume"),
    "volume 5000 digits": (STOOQ_ROW.format(price="230.49", volume="9" * 5000), "refused"),
    "volume negative": (STOOQ_ROW.format(price="230.49", volume="-3"), "refused: volume"),
    "price 1e999": (STOOQ_ROW.format(price="1e999", volume="1"), "refused: price"),
    "price NaN": (STOOQ_ROW.format(price="NaN", volume="1"), "refused: price"),
    "price zero": (STOOQ_ROW.format(price="0", volume="1"), "refused: price"),
    "price words": (STOOQ_ROW.format(price="lots", volume="1"), "Rejected"),
    "date year 1": ("AAPL.US,0001-01-01,00:00:00,1,1,1,230.49,1", "refused: ts"),
    "date garbage": ("AAPL.US,yesterday,noon,1,1,1,230.49,1", "Rejected"),
    "too few fields": ("AAPL.US,2025-08-27", "Rejected"),
    "N/D": ("AAPL.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D", "Rejected"),
}


@pytest.mark.parametrize("case", STOOQ_CASES)
def test_stooq_hostile_rows_are_refused_with_the_symbol(source_server, case):
    row, expected = STOOQ_CASES[case]
    source_server.script("/q/l/", Answer(body=stooq_csv(row)))
    [item] = StooqSource(http(), source_server.url).fetch(["AAPL"])
    assert judge(item).startswith(expected), (case, item)
    if isinstance(item, Rejected):
        assert item.symbol == "AAPL" and item.reason.startswith("stooq: ")


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00garbage",
        b"Symbol,Date\r\n" + b"x" * 300_000,  # a field over the csv module's size limit
        b'Symbol,Date,Time,Open,High,Low,Close,Volume\r\n"unterminated\x00',
        b"",
    ],
)
def test_stooq_answer_that_is_not_the_csv_is_refused_for_each_symbol(source_server, body):
    source_server.script("/q/l/", Answer(body=body))
    items = list(StooqSource(http(), source_server.url).fetch(["AAPL", "MSFT"]))
    assert all(isinstance(i, (Rejected, Failed)) for i in items), items
    named = set()
    for i in items:
        named |= {i.symbol} if isinstance(i, Rejected) else set(i.symbols)
    assert named - {None} == {"AAPL", "MSFT"}  # each asked symbol hears what became of it
    assert all(i.reason.startswith("stooq: ") for i in items)


def test_stooq_rows_not_asked_for_or_twice_are_refused(source_server):
    good = STOOQ_ROW.format(price="230.49", volume="7")
    source_server.script("/q/l/", Answer(body=stooq_csv(good, good, "EVIL.US,x,y,1,1,1,1,1")))
    items = list(StooqSource(http(), source_server.url).fetch(["AAPL"]))
    assert [judge(i) for i in items] == ["tick", "Rejected", "Rejected"]
    assert "second row for AAPL" in items[1].reason and items[1].symbol == "AAPL"
    assert "EVIL.US" in items[2].reason and "asked: AAPL" in items[2].reason
    assert items[2].symbol == "EVIL"


FINNHUB_CASES = {
    "price NaN": (b'{"c": NaN, "t": 1724788801}', "refused: price"),
    "price huge": (json.dumps({"c": 10**30, "t": NOW_S}).encode(), "refused: price"),
    "price an object": (b'{"c": {"a": 1}, "t": 1724788801}', "refused: price"),
    "price negative": (finnhub_quote(-1.0, NOW_S), "refused: price"),
    "time a string": (b'{"c": 1.5, "t": "now"}', "Rejected"),
    "time in the far future": (finnhub_quote(1.5, 10**12), "refused: ts"),
    "time Infinity": (b'{"c": 1.5, "t": Infinity}', "Rejected"),
    "not an object": (b"[1, 2, 3]", "Rejected"),
    "deep nesting": (b'{"c": ' + b"[" * 100_000, "Rejected"),
    "invalid UTF-8": (b'{"c": "\xff", "t": 1}', "Rejected"),
}


@pytest.mark.parametrize("case", FINNHUB_CASES)
def test_finnhub_hostile_answers_are_refused_with_the_symbol(source_server, case):
    body, expected = FINNHUB_CASES[case]
    source_server.script("/api/v1/quote", Answer(body=body))
    [item] = FinnhubSource(http(), source_server.url, Secret("k")).fetch(["AAPL"])
    assert judge(item).startswith(expected), (case, item)
    if isinstance(item, Rejected):
        assert item.symbol == "AAPL" and item.reason.startswith("finnhub: ")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_failures_of_the_symbol(source_server, status):
    source_server.script("/v8/finance/chart/AAPL", Answer(status, b"<html>busy</html>"))
    source_server.script("/api/v1/quote", Answer(status, b"busy"))
    source_server.script("/q/l/", Answer(status, b"busy"))
    for source in (
        YahooSource(http(), source_server.url),
        FinnhubSource(http(), source_server.url, Secret("k")),
        StooqSource(http(), source_server.url),
    ):
        [item] = source.fetch(["AAPL"])
        assert isinstance(item, Failed) and item.symbols == ("AAPL",)
        assert item.reason.startswith(f"{source.name}: HTTP {status}")


# --- one slow symbol does not starve the others ----------------------------------------------


def test_a_trickling_symbol_costs_the_round_its_deadline_and_the_others_still_come(source_server):
    source_server.script("/v8/finance/chart/SLOW", Answer(endless=True, trickle_s=0.05))
    for symbol in ("AAPL", "MSFT"):
        source_server.script(
            f"/v8/finance/chart/{symbol}", Answer(body=yahoo_chart(symbol, 100.5, NOW_S))
        )
    source = YahooSource(http(timeout_s=0.5, retries=3), source_server.url)
    items = list(source.fetch(["SLOW", "AAPL", "MSFT"]))
    assert isinstance(items[0], Failed) and "0.5s deadline" in items[0].reason
    assert items[0].symbols == ("SLOW",)
    assert [(i.symbol, judge(i)) for i in items[1:]] == [("AAPL", "tick"), ("MSFT", "tick")]
    slow = source_server.requests_to("/v8/finance/chart/SLOW")
    assert len(slow) == 1 and slow[0].client_left.wait(10)


def test_an_unexpected_failure_of_one_request_is_a_failure_of_its_symbols_only():
    class Flaky(PolledSource):
        name = "flaky"

        def min_interval_s(self, symbol_count: int) -> float:
            return 1.0

        def fetch_request(self, symbols):
            if symbols == ("BAD",):
                raise KeyError("surprise")
            yield Tick(symbols[0], 1.0, 1, NOW_S * 1000, self.name)

    items = list(Flaky(http(), "http://127.0.0.1:9").fetch(["AAPL", "BAD", "MSFT"]))
    assert [type(i).__name__ for i in items] == ["Tick", "Failed", "Tick"]
    assert items[1].symbols == ("BAD",) and "flaky: unexpected KeyError" in items[1].reason


# --- fuzzing the parsers ---------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 10**20, 2**63, 10**400, NOW_S])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner),
    max_leaves=12,
)  # fmt: skip


def check_items(items, source: str, asked: set[str]) -> None:
    for item in items:
        judge(item)  # only ContractError may come out of the contract
        if isinstance(item, Tick):
            assert item.symbol in asked and item.source == source
        elif isinstance(item, (Rejected, Failed)):
            assert item.reason.startswith(f"{source}: ")
            named = {item.symbol} if isinstance(item, Rejected) else set(item.symbols)
            assert named & asked or "asked: " in item.reason


@FUZZ
@given(body=st.binary(max_size=400), status=st.sampled_from([200, 404, 500]))
def test_fuzz_yahoo_any_bytes(body, status):
    check_items([parse_chart("AAPL", status, body)], "yahoo", {"AAPL"})


@FUZZ
@given(price=json_values, seconds=json_values, volumes=st.lists(json_values, max_size=3))
def test_fuzz_yahoo_any_values_in_a_chart(price, seconds, volumes):
    body = json.dumps(yahoo_doc(price, seconds, volumes)).encode()
    check_items([parse_chart("AAPL", 200, body)], "yahoo", {"AAPL"})


@FUZZ
@given(doc=json_values)
def test_fuzz_yahoo_any_json_document(doc):
    body = json.dumps({"chart": doc}).encode()
    check_items([parse_chart("AAPL", 200, body)], "yahoo", {"AAPL"})


@FUZZ
@given(body=st.binary(max_size=400))
def test_fuzz_finnhub_any_bytes(body):
    check_items([parse_quote("AAPL", body)], "finnhub", {"AAPL"})


@FUZZ
@given(c=json_values, t=json_values, extra=st.dictionaries(st.text(max_size=5), json_values))
def test_fuzz_finnhub_any_values_in_a_quote(c, t, extra):
    body = json.dumps({**extra, "c": c, "t": t}).encode()
    check_items([parse_quote("AAPL", body)], "finnhub", {"AAPL"})


NAMES = {stooq_symbol(s): s for s in ("AAPL", "BMW.DE")}


@FUZZ
@given(body=st.binary(max_size=400))
def test_fuzz_stooq_any_bytes(body):
    check_items(list(parse_quotes(body, NAMES)), "stooq", set(NAMES.values()))


@FUZZ
@given(
    rows=st.lists(
        st.lists(st.text(max_size=12), min_size=0, max_size=10).map(",".join)
        | st.builds(
            "AAPL.US,{},{},1,1,1,{},{}".format,
            st.text(max_size=12), st.text(max_size=10), st.text(max_size=12),
            st.text(max_size=12) | st.integers().map(str) | st.floats().map(str),
        ),
        max_size=5,
    )
)  # fmt: skip
def test_fuzz_stooq_any_rows_under_the_real_header(rows):
    body = stooq_csv(*rows)
    check_items(list(parse_quotes(body, NAMES)), "stooq", set(NAMES.values()))
