"""Builds the storage stage's pieces from its settings, runs the loop, and closes everything."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from cassandra import DriverException
from cassandra.cluster import NoHostAvailable
from kafka.errors import KafkaError

from common.cql import build_cluster
from common.polling import Backoff
from common.ready import ready
from common.topics import TopicTooSmall, check_dead_letters_fit, ensure_topics, subscribe_when_ready
from storage import schema
from storage.consumer import StorageLoop
from storage.dead_letters import DeadLetterSink
from storage.settings import StorageSettings
from storage.writer import CassandraWriter

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _until_ready(what: str, attempt: Callable[[], T], stop: threading.Event) -> T | None:
    """Retry a start-up step with backoff until it works or a stop is requested (None)."""
    backoff = Backoff(initial_s=1.0, maximum_s=15.0)
    while True:
        try:
            return attempt()
        except (NoHostAvailable, DriverException, KafkaError, OSError) as e:
            delay = backoff.next()
            logger.warning("%s not reachable, retrying in %.0fs: %s", what, delay, e)
            if stop.wait(delay):
                return None


def init_schema(settings: StorageSettings) -> None:
    cluster = build_cluster(settings.cassandra_hosts, settings.cassandra_port, settings.consistency)
    try:
        schema.apply(cluster.connect(), settings.keyspace, settings.replication)
    finally:
        cluster.shutdown()


def serve(settings: StorageSettings, stop: threading.Event) -> None:
    """Consume until `stop` is set; the batch in flight is stored and committed first."""
    clusters: list = []
    consumer = None
    dead_letters = None
    try:
        writer = _until_ready("Cassandra", lambda: _cassandra_writer(settings, clusters), stop)
        if writer is None or _until_ready("Kafka", lambda: _kafka_topics(settings), stop) is None:
            return
        consumer = _consumer(settings)
        if not subscribe_when_ready(consumer, _consumed(settings), stop):
            return
        dead_letters = _dead_letter_sink(settings)
        loop = StorageLoop(
            consumer,
            writer,
            dead_letters,
            ticks_topic=settings.ticks_topic,
            aggregates_topic=settings.aggregates_topic,
            bars_topic=settings.bars_topic,
            batch_size=settings.batch_size,
            stop=stop,
        )
        with ready(settings.ready_file):
            loop.run()
    finally:
        if consumer is not None:
            consumer.close(autocommit=False)
        if dead_letters is not None:
            dead_letters.close()
        for cluster in clusters:
            cluster.shutdown()


def _cassandra_writer(settings: StorageSettings, clusters: list) -> CassandraWriter:
    """A writer on a connected session with the schema applied; its cluster goes in `clusters`
    (shut down by the caller), or is shut down here when connecting fails."""
    cluster = build_cluster(settings.cassandra_hosts, settings.cassandra_port, settings.consistency)
    clusters.append(cluster)
    try:
        session = cluster.connect()
        schema.apply(session, settings.keyspace, settings.replication)
        return CassandraWriter(
            session,
            settings.keyspace,
            ticks_ttl_s=settings.ticks_ttl_s,
            aggregates_ttl_s=settings.aggregates_ttl_s,
            concurrency=settings.write_concurrency,
        ).prepare()
    except (NoHostAvailable, DriverException):
        cluster.shutdown()
        clusters.remove(cluster)
        raise


def _consumed(settings: StorageSettings) -> list[str]:
    return [settings.ticks_topic, settings.aggregates_topic, settings.bars_topic]


def _kafka_topics(settings: StorageSettings) -> list[str]:
    """The topics, created when missing; a dead-letter topic too small is warned of."""
    topics = [*_consumed(settings), settings.dead_letter_topic]
    created = ensure_topics(settings.bootstrap_servers, topics)
    try:
        check_dead_letters_fit(settings.bootstrap_servers, settings.dead_letter_topic)
    except TopicTooSmall as e:
        logger.warning("%s; until then a dead letter too large for it is sent without its "
                       "bytes (metadata only)", e)  # fmt: skip
    return created


def _consumer(settings: StorageSettings):
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.consumer_group,
        client_id="stock-storage",
        enable_auto_commit=False,
        # A new group starts from the oldest retained record: nothing in Kafka is skipped.
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_size,
        # Each poll costs a decode, a Cassandra round trip and an offset commit whatever it
        # holds: answering every fetch at its first record made a write (and a commit) per
        # producer batch, about 6 ms of CPU per tick at 10 ticks/s.
        fetch_min_bytes=settings.fetch_min_bytes,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        # The client's default (45 s) would leave a crashed writer's partitions idle that
        # long before the group hands them to a restarted or surviving writer.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
    )


def _dead_letter_sink(settings: StorageSettings) -> DeadLetterSink:
    from kafka import KafkaProducer

    # Not idempotent: kafka-python's idempotent producer turns a record Kafka refuses for good
    # (too large for the topic) into a fatal state that fails every later send, where the sink
    # must go on with the metadata-only letter. Storage's dead letters are at-least-once anyway
    # (a batch read again after a crash sends its letters again).
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="stock-storage-dead-letters",
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
    )
    return DeadLetterSink(producer, settings.dead_letter_topic)
