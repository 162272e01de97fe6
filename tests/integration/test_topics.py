"""common.topics on a real broker: what a stage reads of a topic before it starts."""

from __future__ import annotations

import threading
import uuid

import pytest

from common.topics import record_limit


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
