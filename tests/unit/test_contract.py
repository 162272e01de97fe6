import json
import math

import pytest

from common.contract import (
    EARLIEST_TS_MS,
    MAX_MESSAGE_BYTES,
    Aggregate,
    ContractError,
    Tick,
    dead_letter,
    parse_symbols,
    validate_symbol,
)

NOW = 1_795_000_000_000


def tick(**overrides) -> Tick:
    fields = {"symbol": "AAPL", "price": 230.49, "volume": 100, "ts": NOW, "source": "test"}
    fields.update(overrides)
    return Tick(**fields)


def test_tick_json_round_trip_is_exact():
    t = tick(seq=3)
    assert Tick.from_json(t.to_json(), now=NOW) == t
    assert json.loads(t.to_json()) == {
        "symbol": "AAPL", "price": 230.49, "volume": 100, "ts": NOW, "source": "test", "seq": 3,
    }  # fmt: skip


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "^GSPC", "EURUSD=X", "BF-B", "A", "X" * 15])
def test_valid_symbols_are_accepted(symbol):
    assert validate_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol", ["", "aapl", "AAPL ", "A;DROP", "X" * 16, "AAPL'", "ÄPFEL", None, 42]
)
def test_invalid_symbols_are_rejected_with_a_reason(symbol):
    with pytest.raises(ContractError, match="symbol"):
        validate_symbol(symbol)


def test_parse_symbols_splits_on_commas_and_spaces_and_drops_repeats():
    assert parse_symbols("AAPL,MSFT  GOOG,AAPL") == ["AAPL", "MSFT", "GOOG"]
    with pytest.raises(ContractError, match="no symbols"):
        parse_symbols(" , ")
    with pytest.raises(ContractError, match="'msft'"):
        parse_symbols("AAPL,msft")


@pytest.mark.parametrize(
    ("price", "reason"),
    [(0, "above 0"), (-1.5, "above 0"), (math.nan, "finite"), (math.inf, "finite"),
     ("230.49", "number"), (True, "number"), (None, "number")],
)  # fmt: skip
def test_bad_prices_are_rejected(price, reason):
    with pytest.raises(ContractError, match=reason):
        tick(price=price).validated(now=NOW)


@pytest.mark.parametrize("volume", [-1, 1.5, "100", None, True])
def test_bad_volumes_are_rejected(volume):
    with pytest.raises(ContractError, match="volume"):
        tick(volume=volume).validated(now=NOW)


def test_integral_float_volume_is_accepted_as_int():
    assert tick(volume=100.0).validated(now=NOW).volume == 100


def test_timestamps_before_2000_or_a_day_ahead_are_rejected():
    with pytest.raises(ContractError, match="before the year 2000"):
        tick(ts=EARLIEST_TS_MS - 1).validated(now=NOW)
    with pytest.raises(ContractError, match="seconds instead of milliseconds"):
        tick(ts=NOW // 1000).validated(now=NOW)
    with pytest.raises(ContractError, match="future"):
        tick(ts=NOW + 24 * 3600 * 1000 + 1).validated(now=NOW)
    assert tick(ts=NOW + 24 * 3600 * 1000).validated(now=NOW).ts == NOW + 24 * 3600 * 1000
    with pytest.raises(ContractError, match="whole number"):
        tick(ts=float(NOW)).validated(now=NOW)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"symbol": "AAPL", "price": 1.0}', "missing field"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "limit"),
    ],
)
def test_malformed_payloads_are_rejected(payload, reason):
    with pytest.raises(ContractError, match=reason):
        Tick.from_json(payload, now=NOW)


def aggregate(**overrides) -> Aggregate:
    fields = dict(
        symbol="AAPL", window_ms=60_000, window_start=NOW, window_end=NOW + 60_000,
        open=1.0, high=3.0, low=0.5, close=2.0, avg=1.5, vwap=1.7, volume=10, count=4,
    )  # fmt: skip
    fields.update(overrides)
    return Aggregate(**fields)


def test_aggregate_json_round_trip_is_exact():
    a = aggregate()
    assert Aggregate.from_json(a.to_json(), now=NOW) == a


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"window_end": NOW + 1}, "window_end"),
        ({"low": 4.0}, "above high"),
        ({"count": 0}, "at least 1"),
        ({"vwap": math.nan}, "finite"),
        ({"symbol": "bad sym"}, "symbol"),
    ],
)
def test_inconsistent_aggregates_are_rejected(overrides, reason):
    with pytest.raises(ContractError, match=reason):
        aggregate(**overrides).validated(now=NOW)


def test_dead_letter_keeps_reason_origin_and_raw_bytes():
    record = json.loads(dead_letter("bad price", b'{"price": -1}', {"topic": "ticks", "offset": 7}))
    assert record["reason"] == "bad price"
    assert record["origin"] == {"topic": "ticks", "offset": 7}
    assert record["payload"] == '{"price": -1}'
    assert json.loads(dead_letter("garbage", b"\xff", {}))["payload"] == "\\xff"
