"""Records as large as the broker takes, and a dead-letter topic smaller than a dead letter
(issue #18): storage dead-letters each hostile record once with a bounded letter, stores every
valid tick around them, and commits; it never retries a batch Kafka will refuse for ever."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import uuid
from dataclasses import replace

import pytest

from common.contract import (
    DEAD_LETTER_MAX_BYTES,
    Tick,
    dead_letter_bytes,
    now_ms,
    read_dead_letter,
)
from common.polling import wait_until
from tests.hostile import large_records
from tests.integration.storage.conftest import all_committed, read_to_end, send_all, tick_keys

# A client that can send the largest record the broker takes (its own default is 1 MiB).
LARGE_PRODUCER = {"max_request_size": 2 * 1024 * 1024, "acks": "all", "linger_ms": 20}


def _send(bootstrap: str, records: list[tuple[str, bytes | None, bytes | None]], **config) -> list:
    return send_all(bootstrap, records, **{**LARGE_PRODUCER, **config})


def _valid(n: int, seed: int) -> list[Tick]:
    rng = random.Random(seed)
    start = now_ms() - 60_000
    return [
        Tick(rng.choice(["AAPL", "MSFT"]), rng.randrange(100, 90_000) / 100, rng.randrange(1, 500),
             start + i * 10, "test", i)
        for i in range(n)
    ]  # fmt: skip


def _letters_by_origin(bootstrap: str, topic: str) -> dict:
    found: dict = {}
    for record in read_to_end(bootstrap, topic):
        assert len(record.value) <= DEAD_LETTER_MAX_BYTES
        assert record.key is None or len(record.key) <= 64
        letter = read_dead_letter(record.value)
        o = letter["origin"]
        found.setdefault((o["topic"], o["partition"], o["offset"]), []).append(letter)
    return found


@pytest.mark.parametrize("compression", [None, "gzip", "lz4", "zstd"])
def test_records_up_to_the_brokers_limit_are_dead_lettered_and_storage_goes_on(
    storage_settings, run_storage, kafka_admin, cassandra_session, compression, caplog
):
    s = storage_settings
    hostile = large_records()
    if compression is not None:
        # Each compressed batch is a kind of input of its own; a few records of every content.
        hostile = [h for h in hostile if h.kind.endswith(("-64k", "-512k")) or "key-" in h.kind]
    valid = _valid(300, seed=len(hostile))
    mixed = [(s.ticks_topic, t.key, t.to_json()) for t in valid]
    mixed += [(s.ticks_topic, h.key, h.value) for h in hostile]
    random.Random(3).shuffle(mixed)
    written = _send(s.bootstrap_servers, mixed, compression_type=compression)

    with caplog.at_level(logging.WARNING, logger="storage"), run_storage(s):
        wait_until(lambda: all_committed(kafka_admin, s), 300, "every record committed")

    assert sorted(tick_keys(cassandra_session, s.keyspace)) == sorted(t.identity for t in valid)
    letters = _letters_by_origin(s.bootstrap_servers, s.dead_letter_topic)
    valid_values = {t.to_json() for t in valid}
    hostile_at = {
        where: record[1:]
        for where, record in zip(written, mixed, strict=True)
        if record[2] not in valid_values
    }
    assert set(letters) == set(hostile_at), "every large record dead-lettered, nothing else"
    for where, found in letters.items():
        assert len(found) == 1, f"dead-lettered {len(found)} times: {where}"
        letter = found[0]
        key, value = hostile_at[where]
        assert letter["stage"] == "storage" and letter["reason"]
        assert letter["payload"]["sha256"] == hashlib.sha256(value).hexdigest()
        assert letter["payload"]["bytes"] == len(value)
        assert value.startswith(dead_letter_bytes(letter["payload"]))
        assert letter["key"]["sha256"] == hashlib.sha256(key).hexdigest()
    retried = [r for r in _ours(caplog) if "retrying" in r.getMessage()]
    assert retried == [], retried[0].getMessage()


def _ours(caplog) -> list[logging.LogRecord]:
    """The storage stage's own log lines (the Kafka client retries a split batch, as it should)."""
    return [r for r in caplog.records if r.name.startswith("storage")]


def _small_topic(admin, name: str, max_message_bytes: int) -> str:
    from kafka.admin import NewTopic

    config = {"max.message.bytes": str(max_message_bytes)}
    admin.create_topics([NewTopic(name, 1, 1, topic_configs=config)])
    return name


def test_a_dead_letter_topic_too_small_gets_metadata_only_letters_not_a_retry_loop(
    storage_settings, run_storage, kafka_admin, cassandra_session, caplog
):
    from tests.conftest import _delete_topics

    dead = _small_topic(kafka_admin, f"{storage_settings.dead_letter_topic}_small", 1500)
    s = replace(storage_settings, dead_letter_topic=dead)
    try:
        valid = _valid(50, seed=9)
        big = b'{"symbol": "AAPL", "note": "' + b"z" * 8000 + b'"}'
        records = [(s.ticks_topic, t.key, t.to_json()) for t in valid[:25]]
        records += [(s.ticks_topic, b"AAPL", big), (s.ticks_topic, b"AAPL", b"{broken")]
        records += [(s.ticks_topic, t.key, t.to_json()) for t in valid[25:]]
        _send(s.bootstrap_servers, records)

        with caplog.at_level(logging.WARNING, logger="storage"), run_storage(s):
            wait_until(lambda: all_committed(kafka_admin, s), 180, "every record committed")

        stored = tick_keys(cassandra_session, s.keyspace)
        assert sorted(stored) == sorted(t.identity for t in valid)
        letters = [read_dead_letter(r.value) for r in read_to_end(s.bootstrap_servers, dead)]
        by_digest = {letter["payload"]["sha256"]: letter for letter in letters}
        assert len(letters) == 2 and len(by_digest) == 2
        slim = by_digest[hashlib.sha256(big).hexdigest()]
        assert slim["payload"]["data"] == "" and slim["payload"]["clipped"] is True
        assert slim["payload"]["bytes"] == len(big)
        whole = by_digest[hashlib.sha256(b"{broken").hexdigest()]
        assert dead_letter_bytes(whole["payload"]) == b"{broken"
        lines = [r.getMessage() for r in _ours(caplog)]
        assert not [line for line in lines if "retrying" in line]
        assert any("max.message.bytes" in line for line in lines), "the start-up warning"
    finally:
        _delete_topics(s.bootstrap_servers, [dead])


def test_a_record_that_keeps_failing_unexpectedly_is_dead_lettered_alone(
    storage_settings, kafka_admin, cassandra_session, services, caplog
):
    """A bug set off by one record (here a writer that fails on one symbol) must not stop the
    stage: after a few tries the batch is stored record by record, and the one that fails alone
    is dead-lettered with the error; every other record is stored and the offsets committed."""
    from kafka import KafkaConsumer, KafkaProducer

    from common.cql import build_cluster
    from common.polling import Backoff
    from storage import schema
    from storage.consumer import MAX_UNEXPECTED_FAILURES, StorageLoop
    from storage.dead_letters import DeadLetterSink
    from storage.writer import CassandraWriter

    class FailsOnOneSymbol(CassandraWriter):
        def write(self, ticks, aggregates, bars=()):
            if any(t.symbol == "BOOM" for t in ticks):
                raise KeyError("a bug this record sets off")
            return super().write(ticks, aggregates, bars)

    s = storage_settings
    valid = _valid(40, seed=4)
    boom = Tick("BOOM", 1.5, 1, now_ms() - 1000, "test", 0)
    records = [(s.ticks_topic, t.key, t.to_json()) for t in [*valid[:20], boom, *valid[20:]]]
    written = _send(s.bootstrap_servers, records)
    boom_at = written[20]

    cluster = build_cluster(s.cassandra_hosts, s.cassandra_port)
    session = cluster.connect()
    schema.apply(session, s.keyspace, s.replication)
    writer = FailsOnOneSymbol(session, s.keyspace, ticks_ttl_s=0, aggregates_ttl_s=0).prepare()
    consumer = KafkaConsumer(
        s.ticks_topic, s.aggregates_topic, bootstrap_servers=s.bootstrap_servers,
        group_id=s.consumer_group, enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, enable_idempotence=False)
    sink = DeadLetterSink(producer, s.dead_letter_topic)
    stop = threading.Event()
    loop = StorageLoop(
        consumer, writer, sink, ticks_topic=s.ticks_topic, aggregates_topic=s.aggregates_topic,
        batch_size=500, stop=stop, backoff=Backoff(0.05, 0.2),
    )  # fmt: skip
    thread = threading.Thread(target=loop.run, name=f"storage-{uuid.uuid4().hex[:6]}")
    try:
        with caplog.at_level(logging.ERROR, logger="storage"):
            thread.start()
            wait_until(lambda: all_committed(kafka_admin, s), 180, "every record committed")
    finally:
        stop.set()
        thread.join(60)
        consumer.close(autocommit=False)
        sink.close()
        cluster.shutdown()
    assert not thread.is_alive()

    assert sorted(tick_keys(cassandra_session, s.keyspace)) == sorted(t.identity for t in valid)
    (letter,) = [read_dead_letter(r.value) for r in read_to_end(s.bootstrap_servers,
                                                                s.dead_letter_topic)]  # fmt: skip
    assert letter["origin"]["topic"] == s.ticks_topic
    assert (letter["origin"]["partition"], letter["origin"]["offset"]) == boom_at[1:]
    assert "KeyError" in letter["reason"] and "a bug this record sets off" in letter["reason"]
    assert dead_letter_bytes(letter["payload"]) == boom.to_json()
    failures = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(failures) >= MAX_UNEXPECTED_FAILURES
    assert loop.counters.refused == 1
