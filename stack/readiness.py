"""Real readiness: each service must answer its own protocol, not just accept a connection."""

from __future__ import annotations

import logging
import socket

from stack.settings import StackSettings

logger = logging.getLogger(__name__)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def zookeeper_ready(settings: StackSettings) -> bool:
    """ZooKeeper answers the 'ruok' four-letter word with 'imok' once it serves requests."""
    try:
        with socket.create_connection((settings.host, settings.zookeeper_port), timeout=2) as s:
            s.sendall(b"ruok")
            return s.recv(16) == b"imok"
    except OSError:
        return False


def kafka_ready(settings: StackSettings) -> bool:
    """The broker answers a metadata request and has registered itself (lists broker 0)."""
    if not port_open(settings.host, settings.kafka_port):
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            request_timeout_ms=5000,
        )
    except (KafkaError, OSError, ValueError) as e:
        logger.debug("kafka not ready: %s", e)
        return False
    try:
        brokers = admin.describe_cluster().get("brokers", [])
        return bool(brokers)
    except (KafkaError, OSError, ValueError) as e:
        logger.debug("kafka not ready: %s", e)
        return False
    finally:
        admin.close()


def cassandra_ready(settings: StackSettings) -> bool:
    """The node answers a CQL query over the native protocol."""
    if not port_open(settings.host, settings.cassandra_port):
        return False
    from cassandra.cluster import Cluster, NoHostAvailable
    from cassandra.policies import RoundRobinPolicy

    cluster = Cluster(
        [settings.host],
        port=settings.cassandra_port,
        protocol_version=5,
        load_balancing_policy=RoundRobinPolicy(),
        connect_timeout=5,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=5).one()
        return row is not None
    except (NoHostAvailable, OSError, Exception) as e:  # noqa: BLE001 - any failure means "not yet"
        logger.debug("cassandra not ready: %s", e)
        return False
    finally:
        cluster.shutdown()
