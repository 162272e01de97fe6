"""Malformed and invalid messages do not stop the query: they land in the dead-letter topic."""

from __future__ import annotations

from common.contract import Tick, read_dead_letter
from common.reference import aggregate, differences
from tests.hostile import clipped_from
from tests.integration.processor.conftest import T0, keyed, output_aggregates, read_all, tick

BAD = [
    b"not json at all",
    b'{"symbol":"AAPL","price":1.0}',  # fields missing
    tick("AAPL", 1_000, 100.0).to_json().replace(b'"price":100.0', b'"price":-3'),
    tick("AAPL", 1_000, 100.0).to_json().replace(b'"AAPL"', b'"aapl; DROP"'),
    tick("AAPL", 1_000, 100.0).to_json().replace(b'"volume":1', b'"volume":99999999999999999999'),
    b"[" * 3000 + b"]" * 1000,  # nesting deep enough to break Python's json module
    b'{"symbol":"AAPL","price":true,"volume":1,"ts":1699999800000,"source":"x"}',
    b"\xff\xfe garbage",
    None,  # a tombstone: a record with no value
    b"x" * 5000,  # over the contract's size limit
]


def test_bad_messages_go_to_dead_letters_and_good_ones_still_count(
    processor_settings, batch_runner
):
    settings = processor_settings(windows_ms=(60_000,))
    runner = batch_runner(settings)
    good_first = [tick("AAPL", 1_000, 100.0, 3), tick("MSFT", 2_000, 50.0, 1)]
    good_later = [tick("AAPL", 30_000, 101.0, 2), tick("MSFT", 61_000, 51.0, 4)]
    bad = [(b"AAPL", value) for value in BAD]
    # A valid tick under another symbol's key is refused too (the key routes a symbol).
    bad.append((b"MSFT", tick("AAPL", 1_500, 100.0).to_json()))
    offsets = runner.run([*keyed(good_first[:1]), *bad, *keyed(good_first[1:])])
    bad_offsets = offsets[1 : 1 + len(bad)]
    # The query survived the bad batch: a later batch is still aggregated.
    runner.run(keyed(good_later))

    _, final = output_aggregates(settings.bootstrap_servers, settings.aggregates_topic)
    assert differences(aggregate(good_first + good_later, (60_000,)), final) == []

    letters = [read_dead_letter(r.value) for r in read_all(settings.bootstrap_servers,
                                                     settings.dead_letter_topic)]  # fmt: skip
    assert sorted(d["origin"]["offset"] for d in letters) == bad_offsets
    for letter in letters:
        assert letter["origin"]["topic"] == settings.ticks_topic
        assert letter["stage"] == "processor"
        assert letter["reason"]
        raw = bad[bad_offsets.index(letter["origin"]["offset"])][1]
        assert clipped_from(letter["payload"], raw)
    reasons = {d["origin"]["offset"]: d["reason"] for d in letters}
    assert "price" in reasons[bad_offsets[2]]
    assert "symbol" in reasons[bad_offsets[3]]
    assert "volume" in reasons[bad_offsets[4]]
    assert "key" in reasons[bad_offsets[-1]]
    assert runner.totals.dead_letters == len(bad)


def test_a_tick_far_ahead_of_its_kafka_timestamp_is_refused(processor_settings, batch_runner):
    """The contract's "at most a day in the future" is judged against the record's timestamp."""
    settings = processor_settings(windows_ms=(60_000,))
    runner = batch_runner(settings)
    future = Tick("AAPL", 1.0, 1, T0 + 10 * 365 * 86_400_000, "test")
    runner.run(keyed([future]))
    (letter,) = [read_dead_letter(r.value) for r in read_all(settings.bootstrap_servers,
                                                       settings.dead_letter_topic)]  # fmt: skip
    assert "future" in letter["reason"]
    assert read_all(settings.bootstrap_servers, settings.aggregates_topic) == []
