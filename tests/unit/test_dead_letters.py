"""Dead letters are bounded whatever the refused record holds (issue #18): every stage builds
them through common.contract, and each one stays under DEAD_LETTER_MAX_BYTES and reads back."""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract import (
    DEAD_LETTER_FIELDS,
    DEAD_LETTER_KAFKA_KEY_BYTES,
    DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_PAYLOAD_BYTES,
    SLIM_REASON_CHARS,
    ContractError,
    clip,
    clipped_bytes,
    dead_letter,
    dead_letter_bytes,
    read_dead_letter,
    short,
)
from common.logs import Throttled
from processor.parsing import dead_letter_record as processor_dead_letter
from producer.publisher import dead_letter_record as producer_dead_letter
from storage.decode import Refused
from tests.hostile import CONTENTS, filler, large_records, sizes

LARGE = large_records()


def _stage_letters(key: bytes | None, value: bytes | None) -> dict[str, tuple[bytes | None, bytes]]:
    """The dead letter each stage writes for this refused record, with its Kafka key."""
    storage = Refused("stored record of 1 MB is too large", key, value, {"topic": "ticks"})
    processor = processor_dead_letter(key, value, 1_700_000_000_000, "ticks", 0, 7)
    assert processor is not None, "the processor took a hostile record as a tick"
    producer = producer_dead_letter("yahoo", "not a tick", value, "AAPL")
    return {
        "storage": (key[:DEAD_LETTER_KAFKA_KEY_BYTES] if key else None, storage.to_dead_letter()),
        "processor": processor,
        "producer": producer,
    }


@pytest.mark.parametrize("record", LARGE, ids=[r.kind for r in LARGE])
def test_every_stage_bounds_the_dead_letter_of_a_large_record(record):
    for stage, (kafka_key, value) in _stage_letters(record.key, record.value).items():
        assert len(value) <= DEAD_LETTER_MAX_BYTES, (stage, len(value))
        assert kafka_key is None or len(kafka_key) <= DEAD_LETTER_KAFKA_KEY_BYTES
        letter = read_dead_letter(value)
        assert letter["stage"] == stage
        payload = letter["payload"]
        assert payload["bytes"] == len(record.value)
        assert payload["sha256"] == hashlib.sha256(record.value).hexdigest()
        kept = dead_letter_bytes(payload)
        assert record.value.startswith(kept), stage
        assert payload["clipped"] == (kept != record.value)
        assert len(kept) <= DEAD_LETTER_PAYLOAD_BYTES
        if stage != "producer":
            assert letter["key"]["sha256"] == hashlib.sha256(record.key).hexdigest()
            assert record.key.startswith(dead_letter_bytes(letter["key"]))


def test_the_corpus_reaches_the_brokers_limit_in_every_content():
    names = {r.kind for r in LARGE}
    assert {f"{c}-{s}" for c in CONTENTS for s in sizes()} <= names
    biggest = max(len(r.value) for r in LARGE)
    assert biggest == sizes()["max"] > 1_000_000


@settings(max_examples=300, deadline=None)
@given(
    reason=st.text(max_size=3000),
    key=st.none() | st.binary(max_size=3000),
    payload=st.none() | st.binary(max_size=20_000) | st.text(max_size=6000).map(str.encode),
    origin=st.dictionaries(
        st.text(max_size=400), st.integers() | st.text(max_size=600) | st.none(), max_size=12
    ),
    slim=st.booleans(),
)
def test_any_input_gives_a_bounded_dead_letter_that_reads_back(reason, key, payload, origin, slim):
    value = dead_letter("storage", reason or "?", origin or {"topic": "t"}, payload, key, slim=slim)
    assert len(value) <= DEAD_LETTER_MAX_BYTES
    letter = read_dead_letter(value)
    assert tuple(letter) == DEAD_LETTER_FIELDS
    for raw, clipped in ((key, letter["key"]), (payload, letter["payload"])):
        if raw is None:
            assert clipped is None
            continue
        assert clipped["bytes"] == len(raw)
        assert clipped["sha256"] == hashlib.sha256(raw).hexdigest()
        kept = dead_letter_bytes(clipped)
        assert raw.startswith(kept)
        assert clipped["clipped"] == (kept != raw)
        if slim:
            assert kept == b""
    if slim:
        assert len(letter["reason"]) <= SLIM_REASON_CHARS


def test_text_stays_readable_and_binary_becomes_base64():
    text = clipped_bytes("prix: 12,5 €".encode(), 100)
    assert text["encoding"] == "utf-8" and text["data"] == "prix: 12,5 €"
    assert text["clipped"] is False
    binary = clipped_bytes(b"\x89PNG\r\n\x1a\n\xff\x00", 100)
    assert binary["encoding"] == "base64"
    assert base64.b64decode(binary["data"]) == b"\x89PNG\r\n\x1a\n\xff\x00"


def test_a_character_split_by_the_cut_is_dropped_not_turned_to_base64():
    raw = "a" * 9 + "€" + "b" * 50  # the euro sign's 3 bytes straddle the 10-byte cut
    clipped = clipped_bytes(raw.encode(), 10)
    assert clipped["encoding"] == "utf-8"
    assert clipped["data"] == "a" * 9
    assert clipped["clipped"] is True


def test_the_worst_case_for_json_escaping_stays_under_the_bound():
    control = filler("control", DEAD_LETTER_PAYLOAD_BYTES * 4)
    value = dead_letter("processor", "\x00" * 5000, {"x" * 999: "\x01" * 999}, control, control)
    assert DEAD_LETTER_MAX_BYTES * 0.5 < len(value) <= DEAD_LETTER_MAX_BYTES


def test_a_lone_surrogate_in_a_reason_is_escaped_not_raised():
    value = dead_letter("producer", "bad \ud800 text", {"source": "x"}, None)
    assert "bad" in read_dead_letter(value)["reason"]


def test_an_unknown_stage_is_a_programming_error():
    with pytest.raises(ValueError, match="stage"):
        dead_letter("loader", "r", {"a": 1}, b"x")


@pytest.mark.parametrize(
    "value, says",
    [
        (b"not json", "could not decode"),
        (b"[]", "fields"),
        (json.dumps({"reason": "r", "origin": {}, "payload": "x"}).encode(), "fields"),
        (b"x" * (DEAD_LETTER_MAX_BYTES + 1), "over"),
    ],
)
def test_read_dead_letter_refuses_other_shapes(value, says):
    with pytest.raises(ContractError, match=says):
        read_dead_letter(value)


def test_read_dead_letter_refuses_a_wrong_stage_and_a_bad_digest():
    letter = json.loads(dead_letter("storage", "r", {"a": 1}, b"x"))
    for change, says in (({"stage": "loader"}, "stage"), ({"reason": ""}, "reason")):
        with pytest.raises(ContractError, match=says):
            read_dead_letter(json.dumps({**letter, **change}).encode())
    letter["payload"]["sha256"] = "not hex"
    with pytest.raises(ContractError, match="sha256"):
        read_dead_letter(json.dumps(letter).encode())


def test_clip_and_short_say_what_they_cut():
    assert clip("abc", 10) == "abc"
    cut = clip("x" * 5000, 100)
    assert len(cut) == 100 and cut.endswith("...[5000 chars]")
    assert len(short("y" * 10_000)) == 40

    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no")

    assert short(Unprintable()) == "<Unprintable>"


def test_throttled_logs_the_first_lines_then_one_per_period_with_a_count(caplog):
    log = Throttled(logging.getLogger("test.throttled"), first=3, every_s=3600, max_chars=100)
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        for i in range(50):
            log.warning("refused record %d: %s", i, "z" * 10_000)
        log.warning("another kind of line")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert all(len(line) <= 100 + 40 for line in lines)
    assert lines[0].startswith("refused record 0: zzz")
    assert lines[-1] == "another kind of line"


def test_throttled_says_how_many_it_left_out(caplog, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("common.logs.time.monotonic", lambda: clock[0])
    log = Throttled(logging.getLogger("test.throttled2"), first=1, every_s=10)
    with caplog.at_level(logging.WARNING, logger="test.throttled2"):
        for _ in range(6):
            log.warning("same")
        clock[0] += 11
        log.warning("same")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["same", "same (5 like this left out)"]
