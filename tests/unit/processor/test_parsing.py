from common.contract import MAX_VOLUME, Tick, dead_letter_bytes, read_dead_letter
from processor.parsing import STAGE, dead_letter_record, verdict

TS = 1_699_999_800_000
GOOD = Tick("AAPL", 230.49, 100, TS, "finnhub", 2)


def test_a_valid_tick_gives_its_fields_and_no_error():
    assert verdict(b"AAPL", GOOD.to_json(), TS) == ("AAPL", 230.49, 100, TS, 2, None)
    assert verdict(bytearray(b"AAPL"), bytearray(GOOD.to_json()), TS)[-1] is None


def test_refusals_carry_the_contract_reason():
    cases = {
        b"nope": "not valid JSON",
        b'{"symbol":"AAPL"}': "missing field",
        GOOD.to_json().replace(b"230.49", b"-1"): "price",
        GOOD.to_json().replace(b'"AAPL"', b'"aa pl"'): "symbol",
        None: "tombstone",
        b"[" * 3000: "",  # too deep for json: refused, not raised
        GOOD.to_json().replace(b"230.49", b"1" + b"0" * 400): "",  # int too big for a float
    }
    for payload, reason in cases.items():
        fields = verdict(b"AAPL", payload, TS)
        assert fields[:5] == (None,) * 5, payload
        assert fields[5] and reason in fields[5], (payload, fields[5])


def test_the_key_must_be_the_symbol():
    assert "key" in verdict(b"MSFT", GOOD.to_json(), TS)[-1]
    assert "key" in verdict(None, GOOD.to_json(), TS)[-1]


def test_volume_beyond_the_contracts_bound_is_refused():
    payload = GOOD.to_json().replace(b'"volume":100', f'"volume":{MAX_VOLUME + 1}'.encode())
    assert "above the limit" in verdict(b"AAPL", payload, TS)[-1]
    at_limit = GOOD.to_json().replace(b'"volume":100', f'"volume":{MAX_VOLUME}'.encode())
    assert verdict(b"AAPL", at_limit, TS)[-1] is None


def test_future_is_judged_against_the_kafka_timestamp():
    day = 86_400_000
    assert verdict(b"AAPL", GOOD.to_json(), TS - 2 * day)[-1] is not None
    assert verdict(b"AAPL", GOOD.to_json(), TS)[-1] is None
    # No usable record timestamp: the wall clock decides (TS is in the past, so valid).
    assert verdict(b"AAPL", GOOD.to_json(), -1)[-1] is None


def test_dead_letter_record_keeps_reason_stage_origin_and_raw_bytes():
    assert dead_letter_record(b"AAPL", GOOD.to_json(), TS, "ticks", 0, 7) is None
    key, value = dead_letter_record(b"AAPL", b"garbage", TS, "ticks", 2, 41)
    letter = read_dead_letter(value)
    assert key == b"AAPL"
    assert letter["origin"] == {"topic": "ticks", "partition": 2, "offset": 41}
    assert letter["stage"] == STAGE == "processor"
    assert dead_letter_bytes(letter["payload"]) == b"garbage"
    assert dead_letter_bytes(letter["key"]) == b"AAPL"
    assert "JSON" in letter["reason"]
    _, value = dead_letter_record(b"AAPL", None, TS, "ticks", 0, 1)
    tombstone = read_dead_letter(value)
    assert tombstone["payload"] is None and "tombstone" in tombstone["reason"]
