"""Creating the pipeline's Kafka topics when they are missing (every stage may start first),
checking what they take, and which of Kafka's refusals are for good."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from kafka.errors import (
    InvalidRecordError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)

logger = logging.getLogger(__name__)

# What Kafka answers when the same record can never be accepted, however often it is sent: a
# stage does not retry these (it sends a smaller dead letter, or counts the loss).
REFUSED_FOR_GOOD = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    InvalidTopicError,
    PolicyViolationError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)


def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 3,
    replication: int = 0,
    timeout_ms: int = 30_000,
) -> list[str]:
    """Create each topic that does not exist yet; returns the ones created. Safe to repeat.

    `replication` 0 takes the brokers' default.replication.factor: 1 on the one-node stack, 3 on
    the cluster (python -m stack up --nodes 3), so no stage needs to know which it runs on.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        created = []
        for topic in missing:
            try:
                # -1: the broker's default (Kafka 2.4+, KIP-464).
                admin.create_topics([NewTopic(topic, partitions, replication or -1)])
                created.append(topic)
                logger.info(
                    "created topic=%s partitions=%d replication=%s",
                    topic, partitions, replication or "the brokers' default",
                )  # fmt: skip
            except TopicAlreadyExistsError:
                pass  # another stage created it in the meantime
        return created
    finally:
        admin.close()


def record_limit(bootstrap_servers: str, topic: str, timeout_ms: int = 30_000) -> int:
    """The largest record batch the topic takes (its max.message.bytes, as the broker reports
    it: the topic's own value, else the broker's default).

    A topic another stage has just created may not have reached the broker that answers yet:
    it then reports no configs at all, so this asks again until `timeout_ms` has passed, and
    then raises UnknownTopicOrPartitionError (retriable, like any Kafka error at start-up).
    """
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import UnknownTopicOrPartitionError

    from common.polling import WaitTimeout, wait_until

    name = "max.message.bytes"
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)

    def reported() -> dict | None:
        found = admin.describe_configs([resource], config_filter="all")
        return found.get("topic", {}).get(topic, {}).get(name)

    try:
        entry = wait_until(reported, timeout_ms / 1000, f"the configs of topic {topic}")
    except WaitTimeout as e:
        raise UnknownTopicOrPartitionError(str(e)) from None
    finally:
        admin.close()
    return int(entry["value"])


def check_dead_letters_fit(bootstrap_servers: str, topic: str) -> None:
    """Raise TopicTooSmall when the dead-letter topic cannot take every dead letter a stage may
    write (common.contract.DEAD_LETTER_MAX_BYTES)."""
    from common.contract import DEAD_LETTER_MAX_BYTES

    limit = record_limit(bootstrap_servers, topic)
    # A record batch adds its header and the record's framing (well under 1 KiB) to the value.
    needed = DEAD_LETTER_MAX_BYTES + 1024
    if limit < needed:
        raise TopicTooSmall(
            f"topic {topic} takes records of at most {limit} bytes (max.message.bytes), but a "
            f"dead letter can take {needed}: raise it (kafka-configs.sh --alter --entity-type "
            f"topics --entity-name {topic} --add-config max.message.bytes={needed}) or give "
            "another --dead-letter-topic"
        )


class TopicTooSmall(RuntimeError):
    """A topic's record size limit is below what a stage must be able to write to it."""


def subscribe_when_ready(
    consumer: Any,
    topics: Iterable[str],
    stop: threading.Event,
    listener: Any = None,
    every_s: float = 1.0,
) -> bool:
    """Subscribe `consumer` to `topics` once each shows its partitions (True), or give up when
    `stop` is set (False).

    Two faults of kafka-python 3.0.12's group membership meet here (seen as the dashboard or a
    consumer using 0.7-0.96 cores at rest, its group coordinator no longer knowing it):
    - a member that joins while a topic just created has no partitions yet is assigned nothing
      ("No partition metadata for topic") and does not join again;
    - a member joins with the partitions it knew when it subscribed (none: subscribe() drops the
      metadata of other topics), then sees them and joins a second time. When poll()'s timeout
      runs out during that second join, the join completes unseen: the member stays
      "rebalancing" with heartbeats off, and poll() no longer waits for anything (it spins).
    So this waits for the partitions, then refreshes the metadata after subscribing, so the
    first join already knows them and is the only one.
    """
    waiting = wanted = list(topics)
    while waiting:
        waiting = [t for t in waiting if not consumer.partitions_for_topic(t)]
        if waiting and stop.wait(every_s):
            return False
    consumer.subscribe(wanted, listener=listener)
    consumer.topics()  # a metadata request: the group's view of its topics, before any join
    return True
