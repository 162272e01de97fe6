import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract import (
    EARLIEST_TS_MS,
    MAX_MESSAGE_BYTES,
    Aggregate,
    ContractError,
    Tick,
    dead_letter,
    dead_letter_bytes,
    parse_symbols,
    read_dead_letter,
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
    "symbol", ["", "aapl", "AAPL ", "AAPL\n", "A;DROP", "X" * 16, "AAPL'", "ÄPFEL", None, 42]
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


START = NOW - NOW % 60_000  # windows are aligned to the epoch


def aggregate(**overrides) -> Aggregate:
    fields = dict(
        symbol="AAPL", window_ms=60_000, window_start=START, window_end=START + 60_000,
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
        ({"window_end": START + 1}, "window_end"),
        ({"window_start": START + 1, "window_end": START + 60_001}, "multiple"),
        ({"window_ms": 2 * 86_400_000, "window_end": START + 2 * 86_400_000}, "limit"),
        ({"open": 3.5}, "outside low..high"),
        ({"volume": 2**63}, "volume"),
        ({"count": 2**31}, "count"),
        ({"high": 10**30}, "at most"),
        ({"low": 4.0}, "above high"),
        ({"count": 0}, "at least 1"),
        ({"vwap": math.nan}, "finite"),
        ({"symbol": "bad sym"}, "symbol"),
    ],
)
def test_inconsistent_aggregates_are_rejected(overrides, reason):
    with pytest.raises(ContractError, match=reason):
        aggregate(**overrides).validated(now=NOW)


def test_dead_letter_keeps_stage_reason_origin_and_raw_bytes():
    record = read_dead_letter(
        dead_letter("storage", "bad price", {"topic": "ticks", "offset": 7}, b'{"price": -1}')
    )
    assert record["stage"] == "storage"
    assert record["reason"] == "bad price"
    assert record["origin"] == {"topic": "ticks", "offset": 7}
    assert record["payload"]["data"] == '{"price": -1}' and record["key"] is None
    garbage = read_dead_letter(dead_letter("storage", "garbage", {"o": 1}, b"\xff"))
    assert garbage["payload"]["encoding"] == "base64"
    assert dead_letter_bytes(garbage["payload"]) == b"\xff"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("price", 10**400, "at most"),
        ("price", 2e9, "outside"),
        ("price", 1e-12, "outside"),
        ("volume", 10**12 + 1, "limit"),
        ("volume", 10**400, "limit"),
        ("volume", 1e300, "limit"),
        ("seq", 2**31, "limit"),
        ("ts", 10**30, "future"),
        ("source", "x" * 33, "source"),
        ("symbol", {"a": 1}, "symbol"),
    ],
)
def test_every_number_is_bounded_where_it_is_parsed(field, value, reason):
    fields = json.loads(tick().to_json())
    fields[field] = value
    with pytest.raises(ContractError, match=reason):
        Tick.from_json(json.dumps(fields), now=NOW)


def test_bounds_leave_room_for_a_windows_sums_in_64_bits():
    from common.contract import MAX_PRICE, MAX_VOLUME

    # Millions of maximal ticks in one window still fit Spark's LongType and Cassandra's bigint.
    assert MAX_VOLUME * 9_000_000 < 2**63 - 1
    assert MAX_PRICE * MAX_VOLUME * 2**31 < 1e300


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "tombstone"),
        (b"[" * 100_000, "limit"),
        (b"[" * 2000 + b"]" * 2000, "JSON object|decode"),
        (b'{"symbol":"AAPL","symbol":"MSFT","price":1,"volume":1,"ts":1}', "more than once"),
        (b'{"symbol":"AAPL","price":1e999,"volume":1,"ts":1,"source":"x"}', "finite"),
        (b'{"symbol":"AAPL","price":NaN,"volume":1,"ts":1,"source":"x"}', "finite"),
        (b'\xc3\x28', "not valid JSON"),
    ],
)  # fmt: skip
def test_hostile_payloads_are_refused_with_a_reason(payload, reason):
    with pytest.raises(ContractError, match=reason):
        Tick.from_json(payload, now=NOW)


def test_deep_nesting_within_the_size_limit_is_a_refusal_not_a_crash():
    nested = b'{"symbol":' + b"[" * 2000 + b"]" * 2000 + b"}"
    assert len(nested) <= MAX_MESSAGE_BYTES
    with pytest.raises(ContractError):
        Tick.from_json(nested, now=NOW)


def test_records_must_be_keyed_by_their_symbol():
    t = tick()
    assert Tick.from_record(b"AAPL", t.to_json(), now=NOW) == t
    assert t.key == b"AAPL" and t.identity == ("AAPL", NOW, 0)
    with pytest.raises(ContractError, match="key"):
        Tick.from_record(b"MSFT", t.to_json(), now=NOW)
    with pytest.raises(ContractError, match="key none"):
        Tick.from_record(None, t.to_json(), now=NOW)
    a = aggregate()
    assert Aggregate.from_record(b"AAPL", a.to_json(), now=NOW) == a
    with pytest.raises(ContractError, match="key"):
        Aggregate.from_record(b"aapl", a.to_json(), now=NOW)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_fields = st.sampled_from(["symbol", "price", "volume", "ts", "source", "seq", "window_ms",
                           "window_start", "window_end", "open", "high", "low", "close", "avg",
                           "vwap", "count"])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(["tick", "aggregate"]),
    changes=st.dictionaries(_fields, _json_values, max_size=4),
    garbage=st.binary(max_size=64),
    cut=st.integers(min_value=0, max_value=400),
)
def test_fuzzed_messages_give_a_value_or_a_contract_error_only(base, changes, garbage, cut):
    fields = json.loads((tick() if base == "tick" else aggregate()).to_json())
    fields.update(changes)
    text = json.dumps(fields, allow_nan=True).encode()
    for payload in (text, text[:cut] + garbage, garbage):
        for parse in (Tick.from_json, Aggregate.from_json):
            try:
                parse(payload, now=NOW)
            except ContractError as e:
                assert str(e)
