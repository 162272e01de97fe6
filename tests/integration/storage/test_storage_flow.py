"""The storage stage on real Kafka and Cassandra: exactly-once rows, converging windows,
latest prices that never move back, and dead letters for what breaks the contract."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from dataclasses import replace

from kafka import KafkaConsumer, KafkaProducer

from common.contract import Aggregate, Tick, dead_letter_bytes, now_ms, read_dead_letter
from common.cql import connect
from storage.writer import CassandraWriter
from tests.integration.storage.conftest import (
    all_committed,
    produce,
    tick_keys,
    wait_until,
)


def make_ticks(n: int, symbols: list[str], start_ms: int) -> list[Tick]:
    """n distinct ticks; every third shares its millisecond with the one before (seq 1)."""
    ticks = []
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        ts = start_ms + (i // len(symbols)) // 2
        seq = (i // len(symbols)) % 2
        ticks.append(Tick(symbol, round(100 + i * 0.01, 2), i % 50, ts, "test", seq))
    return ticks


def bar(symbol: str, start: int, count: int, close: float) -> Aggregate:
    return Aggregate(symbol, 60_000, start, start + 60_000, 100.0, 101.0 + count, 99.0, close,
                     100.5, 100.4, 10 * count, count)  # fmt: skip


def test_n_ticks_over_m_symbols_give_exactly_n_rows_and_windows_converge(
    storage_settings, run_storage, kafka_admin, cassandra_session
):
    s = storage_settings
    n, symbols = 2400, ["AAPL", "MSFT", "GOOG", "BRK.B", "^GSPC", "EURUSD=X"]
    ticks = make_ticks(n, symbols, now_ms() - 600_000)
    # Some ticks are delivered twice, as a producer retry would: still one row each.
    sent = ticks + random.Random(1).sample(ticks, 300)
    produce(s.bootstrap_servers, s.ticks_topic, [t.to_json() for t in sent])

    minute = now_ms() // 60_000 * 60_000
    windows = [minute - k * 60_000 for k in range(1, 6)]
    emissions = {(sym, w): [bar(sym, w, c, 100.0 + c / 10) for c in (2, 5, 9, 14)]
                 for sym in ("AAPL", "MSFT") for w in windows}  # fmt: skip
    # Every emission of a window, in a shuffled order, in one go.
    first = [e for es in emissions.values() for e in es]
    random.Random(2).shuffle(first)
    produce(s.bootstrap_servers, s.aggregates_topic, [a.to_json() for a in first],
            key=lambda v: json.loads(v)["symbol"].encode())  # fmt: skip

    with run_storage(s):
        wait_until(lambda: all_committed(kafka_admin, s), 90, "every record committed")
        # The same windows re-emitted late with older values, in separate batches: the rows
        # must keep the values of the emission with the most ticks.
        stale = [es[1] for es in emissions.values()]
        produce(s.bootstrap_servers, s.aggregates_topic, [a.to_json() for a in stale])
        wait_until(lambda: all_committed(kafka_admin, s), 60, "stale emissions committed")

    keys = tick_keys(cassandra_session, s.keyspace)
    assert len(keys) == n
    assert set(keys) == {(t.symbol, t.ts, t.seq) for t in ticks}

    stored = list(cassandra_session.execute(
        "SELECT symbol, toUnixTimestamp(window_start) AS start_ms, close, count, volume "
        f"FROM {s.keyspace}.aggregates"
    ))  # fmt: skip
    assert len(stored) == len(emissions)
    for row in stored:
        final = emissions[(row.symbol, row.start_ms)][-1]
        assert (row.count, row.close, row.volume) == (final.count, final.close, final.volume)

    latest = {r.symbol: r for r in cassandra_session.execute(
        f"SELECT symbol, price, seq, toUnixTimestamp(ts) AS ts_ms FROM {s.keyspace}.latest_prices"
    )}  # fmt: skip
    assert set(latest) == set(symbols)
    for symbol in symbols:
        newest = max((t for t in ticks if t.symbol == symbol), key=lambda t: (t.ts, t.seq))
        assert (latest[symbol].ts_ms, latest[symbol].seq) == (newest.ts, newest.seq)
        assert latest[symbol].price == newest.price


def test_latest_prices_never_move_back_on_an_older_tick(services, make_keyspace):
    from storage import schema
    from storage.settings import replication

    ks = make_keyspace()
    cluster, session = connect(services.cassandra_hosts, services.cassandra_port)
    try:
        schema.apply(session, ks, replication("SimpleStrategy:1"))
        writer = CassandraWriter(session, ks).prepare()
        t = now_ms() - 10_000
        newest = Tick("AAPL", 231.0, 5, t, "test", 1)
        writer.write([newest], [])
        # Older ticks arriving later, alone and in a batch after the newest: none moves it back.
        writer.write([Tick("AAPL", 229.0, 5, t, "test", 0)], [])
        writer.write([Tick("AAPL", 228.0, 5, t - 1, "test", 7)], [])
        writer.write([newest, Tick("AAPL", 227.0, 5, t - 5000, "test", 0)], [])
        select = session.prepare(
            f"SELECT price, seq, toUnixTimestamp(ts) AS ts_ms FROM {ks}.latest_prices "
            "WHERE symbol = ?"
        )
        row = session.execute(select, ("AAPL",)).one()
        assert (row.price, row.ts_ms, row.seq) == (231.0, t, 1)
        # A genuinely newer tick still moves it forward.
        writer.write([Tick("AAPL", 232.5, 5, t + 1, "test", 0)], [])
        assert session.execute(select, ("AAPL",)).one().price == 232.5
        assert session.execute(f"SELECT COUNT(*) FROM {ks}.ticks").one().count == 5
    finally:
        cluster.shutdown()


def read_all(bootstrap: str, topic: str, expected: int) -> list[dict]:
    """The topic's dead letters, checked and decoded, read until `expected` arrived (plus a
    moment for extras)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    letters: list[dict] = []
    try:
        wait_until(
            lambda: (
                letters.extend(
                    read_dead_letter(r.value) for rs in consumer.poll(500).values() for r in rs
                )
                or len(letters) >= expected
            ),
            30,
            f"{expected} dead letters",
        )
        # Anything extra (a duplicate, a wrongly refused record) would show up now.
        letters.extend(read_dead_letter(r.value) for rs in consumer.poll(1000).values() for r in rs)
    finally:
        consumer.close()
    return letters


def test_malformed_messages_go_to_the_dead_letter_topic_and_the_writer_keeps_going(
    storage_settings, run_storage, kafka_admin, cassandra_session
):
    s = storage_settings
    now = now_ms()
    good_before = Tick("AAPL", 230.0, 1, now - 2000, "test")
    good_after = Tick("AAPL", 415.0, 1, now - 1000, "test")
    bad = {
        b"{not json": "not valid JSON",
        Tick("AAPL", -1.0, 1, now, "test").to_json(): "price must be a finite number above 0",
        Tick("aapl;drop", 1.0, 1, now, "test").to_json(): "symbol 'aapl;drop' is not valid",
        Tick("AAPL", 1.0, 1, now // 1000, "test").to_json(): "seconds instead of milliseconds",
        b"x" * 5000: "over the 4096-byte limit",
        b"[1, 2]": "expected a JSON object",
    }
    # One key, so one partition: the offsets below are the order sent.
    values = [good_before.to_json(), *bad, good_after.to_json()]
    produce(s.bootstrap_servers, s.ticks_topic, values, key=b"AAPL")
    produce(s.bootstrap_servers, s.aggregates_topic, [b'{"symbol": "AAPL"}'], key=b"k")

    with run_storage(s):
        wait_until(lambda: all_committed(kafka_admin, s), 90, "every record committed")

    assert set(tick_keys(cassandra_session, s.keyspace)) == {
        (t.symbol, t.ts, t.seq) for t in (good_before, good_after)
    }
    letters = read_all(s.bootstrap_servers, s.dead_letter_topic, len(bad) + 1)
    assert len(letters) == len(bad) + 1
    by_digest = {letter["payload"]["sha256"]: letter for letter in letters}
    offsets = set()
    for payload, reason in bad.items():
        letter = by_digest[hashlib.sha256(payload).hexdigest()]
        assert payload.startswith(dead_letter_bytes(letter["payload"]))
        assert reason in letter["reason"]
        assert letter["origin"]["topic"] == s.ticks_topic
        assert letter["stage"] == "storage"
        offsets.add((letter["origin"]["partition"], letter["origin"]["offset"]))
    assert len({p for p, _ in offsets}) == 1
    assert sorted(o for _, o in offsets) == list(range(1, len(bad) + 1))
    aggregate_letter = by_digest[hashlib.sha256(b'{"symbol": "AAPL"}').hexdigest()]
    assert "missing field" in aggregate_letter["reason"]
    assert aggregate_letter["origin"]["topic"] == s.aggregates_topic


def test_ttls_from_the_settings_are_set_on_each_row(services, make_keyspace):
    from storage import schema
    from storage.settings import replication

    ks = make_keyspace()
    cluster, session = connect(services.cassandra_hosts, services.cassandra_port)
    try:
        schema.apply(session, ks, replication("SimpleStrategy:1"))
        minute = now_ms() // 60_000 * 60_000
        CassandraWriter(session, ks, ticks_ttl_s=3600).prepare().write(
            [Tick("AAPL", 1.0, 1, now_ms(), "test")], [bar("AAPL", minute, 3, 1.0)]
        )
        CassandraWriter(session, ks, aggregates_ttl_s=86_400).prepare().write(
            [Tick("MSFT", 1.0, 1, now_ms(), "test")], [bar("MSFT", minute, 3, 1.0)]
        )
        ttl = {
            r.symbol: r.t
            for r in session.execute(f"SELECT symbol, TTL(price) AS t FROM {ks}.ticks")
        }
        assert 3500 < ttl["AAPL"] <= 3600 and ttl["MSFT"] is None
        ttl = {
            r.symbol: r.t
            for r in session.execute(f"SELECT symbol, TTL(close) AS t FROM {ks}.aggregates")
        }
        assert ttl["AAPL"] is None and 86_300 < ttl["MSFT"] <= 86_400
        # latest_prices never expires: a quiet symbol keeps its last price.
        for r in session.execute(f"SELECT TTL(price) AS t FROM {ks}.latest_prices"):
            assert r.t is None
    finally:
        cluster.shutdown()


def test_a_trickle_of_ticks_is_written_in_gathered_batches(
    storage_settings, run_storage, kafka_admin, cassandra_session, caplog
):
    """Ticks sent one by one, 20 a second, are written a fetch's gathering at a time (the
    broker holds a fetch up to FETCH_MAX_WAIT for FETCH_MIN_BYTES), not one write and one
    commit per tick: every write costs the same CPU whatever it holds."""
    s = replace(storage_settings, fetch_max_wait_ms=1000)
    caplog.set_level(logging.INFO, logger="storage.consumer")
    ticks = make_ticks(41, ["AAPL"], now_ms() - 60_000)
    producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=0)
    try:
        with run_storage(s):
            # The first tick committed: the group has its partitions, so the trickle below is
            # read as it arrives, not found whole in the topic by a late joiner.
            producer.send(s.ticks_topic, key=b"AAPL", value=ticks[0].to_json()).get(60)
            wait_until(lambda: all_committed(kafka_admin, s), 90, "the first tick committed")
            for tick in ticks[1:]:
                producer.send(s.ticks_topic, key=b"AAPL", value=tick.to_json()).get(60)
                time.sleep(0.05)  # the trickle's pace, not a wait for readiness
            wait_until(lambda: all_committed(kafka_admin, s), 90, "every tick committed")
    finally:
        producer.close()

    assert sorted(tick_keys(cassandra_session, s.keyspace)) == sorted(
        (t.symbol, t.ts, t.seq) for t in ticks
    )
    stopped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped ")]
    batches = int(re.search(r"\bbatches=(\d+)", stopped[-1]).group(1))
    # Over about 2 s with fetches held up to 1 s: a handful of writes. Answered at the first
    # record, it was one write per tick (about 40).
    assert 2 <= batches <= 10, stopped[-1]
