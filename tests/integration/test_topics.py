"""common.topics on a real broker: what a stage reads of a topic before it starts."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from common.polling import poll_paced, wait_until
from common.topics import record_limit, subscribe_when_ready


def test_record_limit_waits_for_a_topic_created_meanwhile(services, kafka_admin):
    # Another stage creating the topic while this one asks is how `make local` starts: until
    # the topic reaches the broker that answers, it reports no configs, and that is no crash.
    from kafka.admin import NewTopic

    name = f"pytest-late-{uuid.uuid4().hex[:10]}"
    maker = threading.Timer(1.0, lambda: kafka_admin.create_topics([NewTopic(name, 1, 1)]))
    maker.start()
    try:
        limit = record_limit(services.bootstrap_servers, name, timeout_ms=60_000)
    finally:
        maker.join()
        kafka_admin.delete_topics([name])
    assert limit > 64 * 1024  # the broker's default, about 1 MiB


def test_record_limit_of_a_missing_topic_is_a_clear_retriable_error(services):
    from kafka.errors import UnknownTopicOrPartitionError

    missing = f"pytest-missing-{uuid.uuid4().hex[:10]}"
    with pytest.raises(UnknownTopicOrPartitionError, match=missing) as raised:
        record_limit(services.bootstrap_servers, missing, timeout_ms=2_000)
    assert raised.value.retriable


def test_a_group_member_joins_once_a_topic_created_meanwhile_has_its_partitions(
    services, kafka_admin
):
    # kafka-python 3.0.12 left a member that joined before the new topic had partitions with
    # nothing, and one that joined twice in a row could stay "rebalancing" with poll() spinning
    # a core (the dashboard at rest at 0.74 cores): subscribe_when_ready subscribes once the
    # partitions show, and with them known, so the member joins once and gets them all.
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.consumer.subscription_state import ConsumerRebalanceListener

    name = f"pytest-join-{uuid.uuid4().hex[:10]}"
    consumer = KafkaConsumer(bootstrap_servers=services.bootstrap_servers,
                             group_id=f"{name}-group", auto_offset_reset="earliest")  # fmt: skip
    joins: list[set] = []

    class Joins(ConsumerRebalanceListener):
        def on_partitions_assigned(self, assigned):
            joins.append({tp.partition for tp in assigned})

        def on_partitions_revoked(self, revoked):
            pass

    maker = threading.Timer(1.0, lambda: kafka_admin.create_topics([NewTopic(name, 3, 1)]))
    maker.start()
    try:
        assert subscribe_when_ready(consumer, [name], threading.Event(), Joins(), every_s=0.2)
        # Polled at once, as the stages do: the first poll joins the group.
        wait_until(lambda: poll_paced(consumer, 200) or joins, 120, "the member to join")
        producer = KafkaProducer(bootstrap_servers=services.bootstrap_servers, acks="all")
        producer.send(name, key=b"k", value=b"after the join").get(30)
        producer.close()
        got: list[bytes] = []

        def read() -> bool:
            for records in poll_paced(consumer, 200).values():
                got.extend(r.value for r in records)
            return bool(got)

        wait_until(read, 120, "the record published after the join")
        # A second join came within a few hundred ms of the first: give one the time to show.
        settle = time.monotonic() + 2.0
        while time.monotonic() < settle:
            poll_paced(consumer, 200)
        assert got == [b"after the join"]
        assert joins == [{0, 1, 2}]
    finally:
        maker.join()
        consumer.close()
        kafka_admin.delete_topics([name])


def test_waiting_for_the_partitions_of_a_missing_topic_ends_when_stopped(services):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=services.bootstrap_servers)
    stop = threading.Event()
    stopper = threading.Timer(0.5, stop.set)
    stopper.start()
    try:
        missing = f"pytest-missing-{uuid.uuid4().hex[:10]}"
        assert not subscribe_when_ready(consumer, [missing], stop, every_s=0.1)
        assert consumer.subscription() is None
    finally:
        stopper.join()
        consumer.close()
