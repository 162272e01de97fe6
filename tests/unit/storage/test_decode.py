from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from common.contract import Aggregate, Tick, dead_letter_bytes, now_ms, read_dead_letter
from storage.decode import decode


def record(topic, offset, value, partition=0, key=None):
    return ConsumerRecord(topic, partition, None, offset, now_ms(), 0, key, value, None, [], -1,
                          len(value or b""), -1)  # fmt: skip


def test_good_and_bad_records_are_sorted_and_offsets_cover_all_of_them():
    now = now_ms()
    tick = Tick("AAPL", 230.49, 100, now, "test")
    aggregate = Aggregate("AAPL", 60_000, now - now % 60_000, now - now % 60_000 + 60_000,
                          1.0, 2.0, 0.5, 1.5, 1.2, 1.3, 10, 3)  # fmt: skip
    tp0, tp1, ta = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("a", 0)
    batch = {
        tp0: [record("t", 4, tick.to_json(), key=b"AAPL"), record("t", 5, b"{not json", key=b"k")],
        tp1: [record("t", 9, None, partition=1),
              record("t", 10, Tick("bad sym", 1.0, 1, now, "x").to_json(), partition=1)],
        ta: [record("a", 0, aggregate.to_json(), key=b"AAPL"), record("a", 1, b'{"symbol":"AAPL"}'),
             record("a", 2, aggregate.to_json(), key=b"MSFT")],
    }  # fmt: skip
    out = decode(batch, "t", "a")
    assert out.ticks == [tick]
    assert out.aggregates == [aggregate]
    assert out.next_offsets == {tp0: 6, tp1: 11, ta: 3}
    assert out.first_offsets == {tp0: 4, tp1: 9, ta: 0}
    assert out.records == 7
    assert [s.origin["offset"] for s in out.tick_sources + out.aggregate_sources] == [4, 0]
    origins = [(r.origin["topic"], r.origin["partition"], r.origin["offset"]) for r in out.refused]
    assert origins == [("t", 0, 5), ("t", 1, 9), ("t", 1, 10), ("a", 0, 1), ("a", 0, 2)]
    reasons = [r.reason for r in out.refused]
    assert "not valid JSON" in reasons[0]
    assert "tombstone" in reasons[1]
    assert "symbol" in reasons[2]
    assert "missing field" in reasons[3]
    assert "key b'MSFT' does not match symbol 'AAPL'" in reasons[4]
    letter = read_dead_letter(out.refused[0].to_dead_letter())
    assert dead_letter_bytes(letter["payload"]) == b"{not json"
    assert letter["origin"] == {"topic": "t", "partition": 0, "offset": 5}
    assert letter["stage"] == "storage"
    assert out.refused[0].key == b"k"


def test_a_bars_record_gives_its_bars_and_a_broken_one_is_refused_whole():
    from common.contract import Bar, encode_bars

    now = now_ms()
    start = now - now % 60_000 - 600_000
    bars = [Bar("AAPL", "1m", start + i * 60_000, 1.0, 2.0, 0.5, 1.5, 10, "yahoo")
            for i in range(5)]  # fmt: skip
    [(_, _, value)] = encode_bars(bars)
    broken = value.replace(b"[%d,1.0,2.0" % start, b"[%d,1.0,-2.0" % start)
    tb = TopicPartition("b", 0)
    batch = {tb: [record("b", 7, value, key=b"AAPL"), record("b", 8, broken, key=b"AAPL")]}
    out = decode(batch, "t", "a", "b")
    assert out.bars == bars and out.records == 2
    assert [s.origin["offset"] for s in out.bar_sources] == [7] * 5
    [refused] = out.refused
    assert refused.origin["offset"] == 8 and "bar 0" in refused.reason
    assert out.next_offsets == {tb: 9}
