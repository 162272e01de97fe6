"""The bar contract: a source's history bar, judged like a tick, never read as one."""

import json

import pytest

from common.contract import (
    BAR_RECORD_FIELDS,
    MAX_MESSAGE_BYTES,
    Aggregate,
    Bar,
    ContractError,
    Tick,
    decode_bars,
    encode_bars,
)

NOW = 1_795_000_000_000
MINUTE = 60_000


def bar(**overrides) -> Bar:
    fields = {"symbol": "AAPL", "interval": "1m", "start": NOW - NOW % MINUTE, "open": 230.0,
              "high": 231.5, "low": 229.0, "close": 231.0, "volume": 5000,
              "source": "yahoo"}  # fmt: skip
    fields.update(overrides)
    return Bar(**fields)


def minutes(n: int, **overrides) -> list[Bar]:
    first = NOW - NOW % MINUTE - n * MINUTE
    return [bar(start=first + i * MINUTE, **overrides) for i in range(n)]


def test_bars_travel_a_symbols_run_per_record_and_come_back_as_they_were():
    bars = minutes(200) + minutes(3, symbol="MSFT") + minutes(2, source="stooq")
    records = encode_bars(bars)
    assert all(len(value) <= MAX_MESSAGE_BYTES for _, _, value in records)
    assert [(s, n) for s, n, _ in records][-2:] == [("MSFT", 3), ("AAPL", 2)]
    again = [b for symbol, _, value in records for b in decode_bars(symbol.encode(), value, NOW)]
    assert sorted(again, key=lambda b: (b.symbol, b.source, b.start)) == sorted(
        bars, key=lambda b: (b.symbol, b.source, b.start)
    )
    assert sum(n for _, n, _ in records) == len(bars) and len(records) >= 5
    first = json.loads(records[0][2])
    assert list(first) == list(BAR_RECORD_FIELDS) and first["bars"][0][0] == bars[0].start
    assert again[0].identity == ("AAPL", "1m", bars[0].start)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"symbol": "aapl"}, "symbol"),
        ({"interval": "1h"}, "interval must be one of 1m, 5m, 1d"),
        ({"start": NOW - NOW % MINUTE + 1}, "not a multiple of the 1m interval"),
        ({"interval": "1d", "start": NOW - NOW % MINUTE}, "00:00 UTC"),
        ({"start": -MINUTE}, "before 1970"),
        ({"start": NOW + 2 * 86_400_000}, "more than a day in the future"),
        ({"start": 1.5e12}, "epoch milliseconds"),
        ({"open": -1.0}, "open must be a finite number above 0"),
        ({"close": float("nan")}, "close must be a finite number above 0"),
        ({"high": 228.0}, "above high"),
        ({"open": 232.0}, "open 232.0 is outside low..high"),
        ({"volume": -3}, "volume must not be negative"),
        ({"volume": 2**64}, "above the limit"),
        ({"source": ""}, "source must be a non-empty string"),
    ],
)
def test_a_bar_that_breaks_the_contract_is_refused_with_the_reason(overrides, why):
    with pytest.raises(ContractError, match=why.replace("(", r"\(").replace(".", r"\.")):
        bar(**overrides).validated(NOW)


def test_daily_bars_start_at_midnight_utc_and_may_be_decades_old():
    b = bar(interval="1d", start=347_155_200_000)  # 1981-01-01
    assert b.validated(NOW) == b


def test_bars_are_not_ticks_nor_aggregates_and_neither_is_a_bars_record():
    [(_, _, value)] = encode_bars([bar()])
    with pytest.raises(ContractError, match="missing field"):
        Tick.from_json(value, NOW)
    with pytest.raises(ContractError, match="missing field"):
        Aggregate.from_json(value, NOW)
    tick = Tick("AAPL", 230.0, 10, NOW, "yahoo")
    with pytest.raises(ContractError, match="missing field"):
        decode_bars(b"AAPL", tick.to_json(), NOW)
    extra = json.loads(value) | {"price": 230.0}
    with pytest.raises(ContractError, match="unknown field"):
        decode_bars(b"AAPL", json.dumps(extra), NOW)


@pytest.mark.parametrize(
    ("key", "change", "why"),
    [
        (b"MSFT", {}, "does not match symbol"),
        (b"AAPL", {"bars": []}, "non-empty list"),
        (b"AAPL", {"bars": [[1, 2, 3]]}, "bar 0 is not [start"),
        (b"AAPL", {"bars": "rows"}, "non-empty list"),
        (b"AAPL", {"interval": "2m"}, "interval must be one of"),
    ],
)
def test_a_bars_record_is_refused_whole_with_the_reason(key, change, why):
    [(_, _, value)] = encode_bars(minutes(2))
    record = json.loads(value) | change
    with pytest.raises(ContractError, match=why.replace("[", r"\[")):
        decode_bars(key, json.dumps(record), NOW)


def test_one_broken_bar_refuses_its_record_and_says_which():
    [(_, _, value)] = encode_bars(minutes(3))
    record = json.loads(value)
    record["bars"][1][2] = -4.0  # high
    with pytest.raises(ContractError, match="bar 1 .*high must be a finite number above 0"):
        decode_bars(b"AAPL", json.dumps(record), NOW)
    with pytest.raises(ContractError, match="over the"):
        decode_bars(b"AAPL", b"{" + b" " * MAX_MESSAGE_BYTES + b"}", NOW)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"open": 1e-9, "low": 1e-9, "high": 1e9, "close": 0.1 + 0.2, "volume": 0},
        {"symbol": "BRK.B", "interval": "1d", "start": NOW - NOW % 86_400_000, "source": 'a"b\\'},
    ],
)
def test_the_direct_json_is_what_json_dumps_writes(values):
    valid = bar(**values).validated(NOW)
    [(_, _, value)] = encode_bars([valid])
    row = [valid.start, valid.open, valid.high, valid.low, valid.close, valid.volume]
    expected = {"symbol": valid.symbol, "interval": valid.interval, "source": valid.source,
                "bars": [row]}  # fmt: skip
    assert value == json.dumps(expected, separators=(",", ":")).encode()
