"""Real readiness: each service must answer its own protocol, not just accept a connection.

Each probe asks the one node its settings are a view of (StackSettings.for_node): in a cluster,
a node counts as ready once it is part of the cluster, not merely up.
"""

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


def _four_letters(settings: StackSettings, word: bytes) -> str | None:
    host = settings.node_host()
    try:
        with socket.create_connection((host, settings.zookeeper_port), timeout=2) as s:
            s.sendall(word)
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None


def zookeeper_mode(settings: StackSettings) -> str | None:
    """'standalone', 'leader' or 'follower' (srvr's Mode), or None when it serves nothing: a
    server of an ensemble without a quorum answers srvr with no mode."""
    answer = _four_letters(settings, b"srvr") or ""
    for line in answer.splitlines():
        if line.startswith("Mode: "):
            return line.removeprefix("Mode: ").strip()
    return None


def zookeeper_ready(settings: StackSettings) -> bool:
    """One server answers 'ruok' with 'imok' once it serves requests; a server of an ensemble
    only once it has joined a quorum (it then has a mode)."""
    if settings.nodes == 1:
        return _four_letters(settings, b"ruok") == "imok"
    return zookeeper_mode(settings) in ("leader", "follower")


def kafka_ready(settings: StackSettings) -> bool:
    """The broker answers a metadata request and has registered itself: the cluster it
    describes lists this broker's id."""
    host = settings.node_host()
    if not port_open(host, settings.kafka_port):
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=f"{host}:{settings.kafka_port}",
            request_timeout_ms=5000,
        )
    except (KafkaError, OSError, ValueError) as e:
        logger.debug("kafka not ready: %s", e)
        return False
    try:
        brokers = admin.describe_cluster().get("brokers", [])
        return any(b.get("broker_id") == settings.node - 1 for b in brokers)
    except (KafkaError, OSError, ValueError) as e:
        logger.debug("kafka not ready: %s", e)
        return False
    finally:
        admin.close()


def cassandra_ready(settings: StackSettings) -> bool:
    """The node itself answers a CQL query over the native protocol."""
    host = settings.node_host()
    if not port_open(host, settings.cassandra_port):
        return False
    from cassandra.cluster import Cluster, NoHostAvailable
    from cassandra.policies import WhiteListRoundRobinPolicy

    cluster = Cluster(
        [host],
        port=settings.cassandra_port,
        protocol_version=5,
        load_balancing_policy=WhiteListRoundRobinPolicy([host]),
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


def _json(url: str) -> object | None:
    """The JSON an HTTP endpoint answers with, or None for no answer, an error or not JSON."""
    import json
    import urllib.request
    from urllib.error import URLError

    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - http:// we built
            return json.load(answer)
    except (URLError, OSError, ValueError) as e:
        logger.debug("%s not ready: %s", url, e)
        return None


def dashboard_ready(host: str, port: int) -> bool:
    """The dashboard answers its health API with a JSON object (any status: it reports, it runs)."""
    return isinstance(_json(f"http://{host}:{port}/api/health"), dict)


def master_state(host: str, port: int) -> dict | None:
    """What a standalone Spark master's UI at host:port says of itself and its workers."""
    state = _json(f"http://{host}:{port}/json/")
    return state if isinstance(state, dict) else None


def spark_master_ready(host: str, port: int) -> bool:
    """The standalone master's UI says ALIVE (not STANDBY or RECOVERING)."""
    state = master_state(host, port)
    return state is not None and state.get("status") == "ALIVE"


def spark_worker_registered(host: str, port: int, worker_host: str) -> bool:
    """The master at host:port lists a worker on `worker_host` as ALIVE."""
    workers = (master_state(host, port) or {}).get("workers", [])
    return any(w.get("host") == worker_host and w.get("state") == "ALIVE" for w in workers)
