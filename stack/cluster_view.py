"""What a cluster's own tools say about it, for `python -m stack status`: each ZooKeeper server's
mode, each partition's leader and in-sync replicas, and each Cassandra node as gossip sees it.

Every answer comes from the services themselves (ZooKeeper's srvr, Kafka's metadata, Cassandra's
nodetool over JMX), never from which processes happen to run: a process can be up and still out
of its cluster.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from stack import artifacts, readiness, services
from stack.settings import StackSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")

# nodetool status: "UN  127.0.0.1  104.5 KiB  1  66.7%  <host id>  rack1"
_NODETOOL_ROW = re.compile(r"^([UD][NLJM])\s+(\S+)\s")


@dataclass(frozen=True)
class Partition:
    topic: str
    partition: int
    leader: int  # -1: no leader (every replica that may lead is down)
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass
class ClusterView:
    # node -> "leader", "follower", "standalone", or None (down, or not in a quorum)
    zookeeper: dict[int, str | None] = field(default_factory=dict)
    brokers: tuple[int, ...] = ()  # broker ids registered in ZooKeeper, as Kafka reports them
    partitions: list[Partition] = field(default_factory=list)
    # address -> "UN", "DN", ... as the first node that answers nodetool sees the ring
    cassandra: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "zookeeper": {str(n): mode for n, mode in self.zookeeper.items()},
            "brokers": list(self.brokers),
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "leader": p.leader,
                    "replicas": list(p.replicas),
                    "isr": list(p.isr),
                }
                for p in self.partitions
            ],  # fmt: skip
            "cassandra": self.cassandra,
            "errors": self.errors,
        }


def look(settings: StackSettings) -> ClusterView:
    view = ClusterView()
    view.zookeeper = {n: readiness.zookeeper_mode(settings.for_node(n)) for n in settings.node_ids}
    try:
        view.brokers, view.partitions = kafka_partitions(settings.bootstrap_servers)
    except Exception as e:  # noqa: BLE001 - status reports what it cannot see, and goes on
        view.errors.append(f"kafka: {type(e).__name__}: {e}")
    try:
        view.cassandra = cassandra_ring(settings)
    except Exception as e:  # noqa: BLE001 - the same
        view.errors.append(f"cassandra: {type(e).__name__}: {e}")
    return view


def ask_each_broker(bootstrap_servers: str, ask: Callable[[str], T]) -> T:
    """ask(server) of each broker in turn until one answers; RuntimeError when none does. With a
    broker down, a client bootstrapped from the whole list may pick the dead one and spend its
    timeout there rather than move on."""
    from kafka.errors import KafkaError

    errors = []
    for server in bootstrap_servers.split(","):
        try:
            return ask(server)
        except (KafkaError, OSError) as e:
            errors.append(f"{server}: {type(e).__name__}: {e}")
    raise RuntimeError("no broker answered: " + "; ".join(errors))


def kafka_partitions(bootstrap_servers: str) -> tuple[tuple[int, ...], list[Partition]]:
    """The live brokers and every partition's leader, replicas and ISR (internal topics too)."""
    return ask_each_broker(bootstrap_servers, _partitions_from)


def partition_ends(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Each partition's end offset (how many records it holds)."""
    return ask_each_broker(bootstrap_servers, lambda server: _ends_from(server, topic))


def _ends_from(server: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=server, request_timeout_ms=5_000)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def _partitions_from(server: str) -> tuple[tuple[int, ...], list[Partition]]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=server, request_timeout_ms=10_000)
    try:
        brokers = tuple(sorted(b["broker_id"] for b in admin.describe_cluster()["brokers"]))
        partitions = [
            Partition(
                topic["name"],
                p["partition_index"],
                p["leader_id"],
                tuple(p["replica_nodes"]),
                tuple(p["isr_nodes"]),
            )
            for topic in admin.describe_topics()
            for p in topic["partitions"]
        ]
    finally:
        admin.close()
    return brokers, sorted(partitions, key=lambda p: (p.topic, p.partition))


def cassandra_ring(settings: StackSettings) -> dict[str, str]:
    """Each node's status and state (UN: up and normal, DN: down) from `nodetool status`,
    asked of the first node whose JMX answers; empty on a one-node stack (no JMX there)."""
    if settings.nodes == 1:
        return {}
    jars = artifacts.resolve(settings.cache_dir, artifacts.CASSANDRA, settings.mvn)
    failures = []
    for n in settings.node_ids:
        node = settings.for_node(n)
        if not readiness.port_open("127.0.0.1", node.node_jmx_port):
            failures.append(f"node {n}: JMX port {node.node_jmx_port} closed")
            continue
        out = nodetool(node, jars, "status")
        if out.returncode == 0:
            return {
                m.group(2): m.group(1)
                for line in out.stdout.splitlines()
                if (m := _NODETOOL_ROW.match(line))
            }
        failures.append(f"node {n}: {out.stderr.strip()[-300:]}")
    raise RuntimeError("no node answered nodetool: " + "; ".join(failures))


def nodetool(node: StackSettings, jars: list, *args: str) -> subprocess.CompletedProcess:
    """Cassandra's own nodetool (from the same jars) against one node's JMX on loopback."""
    argv = [
        node.java,
        "-Xmx128m",
        "-XX:TieredStopAtLevel=1",
        *services.CASSANDRA_MODULE_OPENINGS,
        "-cp",
        ":".join(str(j) for j in jars),
        "-Dlogback.configurationFile=logback-tools.xml",
        "org.apache.cassandra.tools.NodeTool",
        "-h",
        "127.0.0.1",
        "-p",
        str(node.node_jmx_port),
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603


def render(view: ClusterView) -> str:
    """The view as text: one line per ZooKeeper server and Cassandra node, one per partition."""
    lines = ["ZooKeeper ensemble:"]
    lines += [f"  node {n}: {mode or 'DOWN or no quorum'}" for n, mode in view.zookeeper.items()]
    lines.append(f"Kafka brokers registered: {', '.join(map(str, view.brokers)) or '-'}")
    for p in view.partitions:
        short = "  UNDER-REPLICATED" if len(p.isr) < len(p.replicas) else ""
        leader = p.leader if p.leader >= 0 else "none"
        lines.append(
            f"  {p.topic}[{p.partition}] leader={leader} replicas={list(p.replicas)} "
            f"isr={list(p.isr)}{short}"
        )
    lines.append("Cassandra ring (nodetool status):")
    lines += [f"  {state} {address}" for address, state in sorted(view.cassandra.items())]
    lines += [f"cannot see {e}" for e in view.errors]
    return "\n".join(lines)
