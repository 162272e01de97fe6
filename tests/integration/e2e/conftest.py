"""The `pipeline` fixture: the three stages (tests/integration/e2e/pipeline.py) on this test's
own topics, keyspace, group and checkpoint directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from common.cql import connect
from stack.stage_env import stage_env
from tests.integration.e2e.pipeline import Pipeline


@pytest.fixture
def pipeline(services, make_topic, make_keyspace, spark_jars, tmp_path) -> Iterator[Pipeline]:
    """The three stages on this test's own topics, keyspace, group and checkpoint directory;
    every stage still running is stopped at the end (SIGTERM, then SIGKILL)."""
    topics = {
        "ticks": make_topic(partitions=3, suffix="_ticks"),
        "aggregates": make_topic(partitions=2, suffix="_aggs"),
        "dead_letters": make_topic(partitions=1, suffix="_dead"),
    }
    keyspace = make_keyspace()
    env = stage_env(
        {**os.environ, "STACK_CACHE_DIR": str(services.cache_dir)},
        KAFKA_BOOTSTRAP_SERVERS=services.bootstrap_servers,
        TICKS_TOPIC=topics["ticks"],
        AGGREGATES_TOPIC=topics["aggregates"],
        DEAD_LETTER_TOPIC=topics["dead_letters"],
        CASSANDRA_HOSTS=services.cassandra_hosts,
        CASSANDRA_PORT=services.cassandra_port,
        CASSANDRA_KEYSPACE=keyspace,
        CONSUMER_GROUP=f"pytest-e2e-{uuid.uuid4().hex[:8]}",
        CHECKPOINT_DIR=tmp_path / "checkpoints",
        SPARK_MASTER="local[2]",
        SPARK_JARS=spark_jars,
        SHUFFLE_PARTITIONS=2,
        TRIGGER_INTERVAL="500ms",
        # A batch each interval, as TRIGGER_INTERVAL asks, rather than waiting for
        # 500 ticks at these low test rates (test_trigger.py covers the wait).
        MIN_OFFSETS_PER_TRIGGER=0,
        LOG_LEVEL="INFO",
    )
    # A client of its own for reading the tables: it reconnects within seconds of a Cassandra
    # restart (the shared session's default policy can take minutes).
    cluster, session = connect(services.cassandra_hosts, services.cassandra_port)
    pipe = Pipeline(env, tmp_path, session, keyspace, topics)
    try:
        yield pipe
    finally:
        pipe.stop_all()
        cluster.shutdown()
