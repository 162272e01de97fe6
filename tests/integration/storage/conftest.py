"""Fixtures for the storage stage: its own topics, keyspace and group per test, and helpers."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import pytest

from common.contract import message_key
from common.polling import poll_paced, wait_until
from storage.settings import StorageSettings


@pytest.fixture
def storage_settings(services, make_topic, make_keyspace) -> StorageSettings:
    """Settings pointing the storage stage at topics, a keyspace and a group of this test's own."""
    return StorageSettings(
        bootstrap_servers=services.bootstrap_servers,
        ticks_topic=make_topic(partitions=3, suffix="_t"),
        aggregates_topic=make_topic(partitions=2, suffix="_a"),
        dead_letter_topic=make_topic(partitions=1, suffix="_d"),
        consumer_group=f"pytest-storage-{uuid.uuid4().hex[:8]}",
        cassandra_hosts=tuple(services.cassandra_hosts),
        cassandra_port=services.cassandra_port,
        keyspace=make_keyspace(),
        batch_size=500,
    )


@pytest.fixture
def storage_env(storage_settings) -> dict[str, str]:
    """The same settings as the environment variables `python -m storage` reads."""
    s = storage_settings
    return {
        "KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "TICKS_TOPIC": s.ticks_topic,
        "AGGREGATES_TOPIC": s.aggregates_topic,
        "DEAD_LETTER_TOPIC": s.dead_letter_topic,
        "CONSUMER_GROUP": s.consumer_group,
        "CASSANDRA_HOSTS": ",".join(s.cassandra_hosts),
        "CASSANDRA_PORT": str(s.cassandra_port),
        "CASSANDRA_KEYSPACE": s.keyspace,
        "BATCH_SIZE": str(s.batch_size),
    }


@contextlib.contextmanager
def storage_running(settings: StorageSettings) -> Iterator[threading.Thread]:
    """The storage service in a thread of this process, stopped (and joined) on exit."""
    from storage.service import serve

    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            serve(settings, stop)
        except BaseException as e:  # surfaced in the test below, not lost in a thread
            errors.append(e)
            raise

    thread = threading.Thread(target=target, name="storage", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the storage service did not stop within 60 s"
    assert not errors, f"the storage service failed: {errors[0]!r}"


@pytest.fixture
def run_storage() -> Callable[[StorageSettings], contextlib.AbstractContextManager]:
    return storage_running


def symbol_key(value: bytes | None) -> bytes | None:
    """The key every producer of the pipeline gives a message: its symbol (None if it has none)."""
    try:
        return message_key(json.loads(value)["symbol"])
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def produce(bootstrap: str, topic: str, values: Iterable[bytes | None], key=symbol_key) -> None:
    """Send values to topic keyed by their symbol, unless `key` gives bytes or a function."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for value in values:
            k = key(value) if callable(key) else key
            producer.send(topic, key=k, value=value)
        producer.flush(timeout=60)
    finally:
        producer.close()


def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t)]
        return consumer.end_offsets(tps)
    finally:
        consumer.close()


def committed_offsets(admin, group: str) -> dict:
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def all_committed(admin, settings: StorageSettings) -> bool:
    """True once the group's committed offsets reach the end of both input topics."""
    from kafka.errors import KafkaError

    ends = end_offsets(
        settings.bootstrap_servers, [settings.ticks_topic, settings.aggregates_topic]
    )
    try:
        done = committed_offsets(admin, settings.consumer_group)
    except KafkaError as e:
        # A broker that has just started has no group coordinator yet: not committed so far.
        if getattr(e, "retriable", False):
            return False
        raise
    return all(done.get(tp, 0) >= end for tp, end in ends.items() if end > 0)


def tick_keys(session, keyspace: str) -> list[tuple]:
    """Every stored tick's key, duplicates included (a full scan; fine for test volumes)."""
    return [
        (r.symbol, r.ts_ms, r.seq)
        for r in session.execute(
            f"SELECT symbol, toUnixTimestamp(ts) AS ts_ms, seq FROM {keyspace}.ticks"
        )
    ]


def stored_tick_count(session, keyspace: str) -> int:
    """Ticks stored so far; 0 while the service has not created its tables yet."""
    exists = session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
        (keyspace, "ticks"),
    ).one()
    return len(tick_keys(session, keyspace)) if exists else 0


def with_group(settings: StorageSettings, group: str) -> StorageSettings:
    return replace(settings, consumer_group=group)


def send_all(
    bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes | None]], **config
) -> list:
    """Send (topic, key, value) records in order; their (topic, partition, offset) as written.
    `config` goes to the client (compression_type, max_request_size ...)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, **{"acks": "all", "linger_ms": 20, **config}
    )
    try:
        futures = [producer.send(topic, key=key, value=value) for topic, key, value in records]
        producer.flush(timeout=120)
        return [(m.topic, m.partition, m.offset) for m in (f.get(timeout=60) for f in futures)]
    finally:
        producer.close()


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 120) -> list:
    """Every record of the topic up to its end offsets as they are now."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = consumer.end_offsets(tps)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list = []

        def done() -> bool:
            for batch in poll_paced(consumer, 500).values():
                records.extend(batch)
            return all(consumer.position(tp) >= end for tp, end in ends.items())

        wait_until(done, timeout_s, f"reading {topic} to its end")
        return records
    finally:
        consumer.close()
