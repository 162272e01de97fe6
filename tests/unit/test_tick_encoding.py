"""Tick.to_json formats directly for speed: it must stay byte-identical to plain json.dumps."""

from __future__ import annotations

import json
from dataclasses import asdict

from hypothesis import given
from hypothesis import strategies as st

from common.contract import MAX_PRICE, MAX_VOLUME, MIN_PRICE, SYMBOL_PATTERN, Tick

ticks = st.builds(
    Tick,
    symbol=st.from_regex(SYMBOL_PATTERN, fullmatch=True),
    price=st.floats(min_value=MIN_PRICE, max_value=MAX_PRICE, allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.01, 230.49, 1e-7, 123456789.123456, MIN_PRICE, MAX_PRICE]),
    volume=st.integers(min_value=0, max_value=MAX_VOLUME),
    ts=st.integers(min_value=946_684_800_000, max_value=4_000_000_000_000),
    source=st.sampled_from(["simulated", "yahoo", "stooq", "finnhub", "replay", 'we"ird\\é']),
    seq=st.integers(min_value=0, max_value=10_000),
)


@given(ticks)
def test_to_json_writes_the_same_bytes_as_json_dumps(tick):
    assert tick.to_json() == json.dumps(asdict(tick), separators=(",", ":")).encode()


@given(ticks)
def test_encoded_ticks_read_back_equal(tick):
    assert Tick.from_json(tick.to_json(), now=tick.ts) == tick
