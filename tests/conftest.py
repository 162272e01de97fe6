"""Fixtures shared by every test: the real services, and a topic or keyspace per test.

The session-scoped `services` fixture starts real ZooKeeper, Kafka and Cassandra from the native
stack on free ports, once per run, and stops them at the end (the JVMs also die with the test
process if it is killed). When KAFKA_BOOTSTRAP_SERVERS and CASSANDRA_HOSTS point at running
services, it attaches to them instead and starts nothing.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.polling import wait_until
from stack import endpoints
from stack.endpoints import Endpoints

# The endpoints of the real services every integration test runs on.
Services = Endpoints

# Stages started by tests inherit this environment. A producer backfills 5 days of bars per
# symbol when it starts (BACKFILL_RANGE); tests about something else would each publish and
# store tens of thousands of bars nobody reads, onto one shared topic. So history is off unless
# a test turns it on (tests/integration/history), and each session has a bars topic of its own.
os.environ.setdefault("BACKFILL_RANGE", "0")
os.environ.setdefault("BARS_TOPIC", f"pytest-bars-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with endpoints.services(
        os.environ, tmp_path_factory.mktemp("stack"), kafka_heap="512m"
    ) as found:
        yield found


def unique_name(request: pytest.FixtureRequest, prefix: str, limit: int = 48) -> str:
    test = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    return f"{prefix}_{test[: limit - len(prefix) - 10]}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kafka_admin(services: Services):
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=services.bootstrap_servers)
    yield admin
    admin.close()


def _delete_topics(bootstrap: str, topics: list[str], timeout_s: float = 60.0) -> None:
    # A fresh client each try: one that saw the broker stop (fault tests) may still be backing
    # off from it after the broker is back.
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    def deleted() -> bool:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics(topics)
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    wait_until(deleted, timeout_s, f"topics {topics} to be deleted", every_s=0.5)


@pytest.fixture
def make_topic(request, services, kafka_admin) -> Iterator[Callable[..., str]]:
    """Creates a topic of this test's own; deleted when the test ends."""
    from kafka.admin import NewTopic

    created: list[str] = []

    def make(partitions: int = 1, suffix: str = "") -> str:
        name = unique_name(request, "pytest") + suffix
        kafka_admin.create_topics([NewTopic(name, partitions, 1)])
        created.append(name)
        return name

    yield make
    if created:
        _delete_topics(services.bootstrap_servers, created)


@pytest.fixture(scope="session")
def cassandra_session(services: Services):
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    cluster = Cluster(
        services.cassandra_hosts,
        port=services.cassandra_port,
        protocol_version=5,
        load_balancing_policy=RoundRobinPolicy(),
    )
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture
def make_keyspace(request, cassandra_session) -> Iterator[Callable[[], str]]:
    """Creates a keyspace of this test's own (replication factor 1); dropped when it ends."""
    created: list[str] = []

    def make() -> str:
        name = unique_name(request, "ks")
        # Keyspace names cannot be bound as parameters; this one is generated above from
        # [a-z0-9_] only.
        cassandra_session.execute(
            f"CREATE KEYSPACE {name} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        created.append(name)
        return name

    yield make
    for name in created:
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {name}")


@pytest.fixture(scope="session")
def spark_jars(services: Services) -> list[Path]:
    from stack import artifacts

    return artifacts.spark_kafka_jars(services.cache_dir)


@pytest.fixture(scope="session")
def spark(spark_jars, tmp_path_factory):
    from processor.session import build_session

    session = build_session(
        "local[2]",
        spark_jars,
        app_name="stock-system-tests",
        extra_conf={"spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("warehouse"))},
    )
    yield session
    session.stop()


def wait_for_session(session, timeout_s: float = 120.0) -> None:
    """Poll until a (shared) session answers again after a Cassandra restart, so the fixtures
    and tests after this one find it working."""
    from cassandra.cluster import NoHostAvailable

    def answers() -> bool:
        try:
            session.execute("SELECT release_version FROM system.local", timeout=5)
        except NoHostAvailable:
            return False
        return True

    wait_until(answers, timeout_s, "Cassandra to answer again", every_s=0.5)
