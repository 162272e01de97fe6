"""The bar contract: a source's history bar, judged like a tick, never read as one."""

import json

import pytest

from common.contract import (
    BAR_FIELDS,
    MAX_MESSAGE_BYTES,
    Aggregate,
    Bar,
    ContractError,
    Tick,
)

NOW = 1_795_000_000_000
MINUTE = 60_000


def bar(**overrides) -> Bar:
    fields = {"symbol": "AAPL", "interval": "1m", "start": NOW - NOW % MINUTE, "open": 230.0,
              "high": 231.5, "low": 229.0, "close": 231.0, "volume": 5000,
              "source": "yahoo"}  # fmt: skip
    fields.update(overrides)
    return Bar(**fields)


def test_a_bar_round_trips_and_keeps_its_identity():
    b = bar()
    again = Bar.from_record(b.key, b.to_json(), NOW)
    assert again == b
    assert again.identity == ("AAPL", "1m", b.start)
    assert list(json.loads(b.to_json())) == list(BAR_FIELDS)


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


def test_a_bar_is_not_a_tick_nor_an_aggregate_and_neither_is_a_bar():
    b = bar()
    with pytest.raises(ContractError, match="missing field"):
        Tick.from_json(b.to_json(), NOW)
    with pytest.raises(ContractError, match="missing field"):
        Aggregate.from_json(b.to_json(), NOW)
    tick = Tick("AAPL", 230.0, 10, NOW, "yahoo")
    with pytest.raises(ContractError, match="missing field"):
        Bar.from_json(tick.to_json(), NOW)
    extra = json.loads(b.to_json()) | {"price": 230.0}
    with pytest.raises(ContractError, match="unknown field"):
        Bar.from_json(json.dumps(extra), NOW)


def test_a_bar_record_must_be_keyed_by_its_symbol_and_small():
    b = bar()
    with pytest.raises(ContractError, match="does not match symbol"):
        Bar.from_record(b"MSFT", b.to_json(), NOW)
    with pytest.raises(ContractError, match="over the"):
        Bar.from_record(b.key, b"{" + b" " * MAX_MESSAGE_BYTES + b"}", NOW)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"open": 1e-9, "low": 1e-9, "high": 1e9, "close": 0.1 + 0.2, "volume": 0},
        {"symbol": "BRK.B", "interval": "1d", "start": NOW - NOW % 86_400_000, "source": 'a"b\\'},
    ],
)
def test_the_direct_json_is_what_json_dumps_writes(values):
    from dataclasses import asdict

    valid = bar(**values).validated(NOW)
    assert valid.to_json() == json.dumps(asdict(valid), separators=(",", ":")).encode()
