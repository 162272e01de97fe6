"""The native stack's settings: where it keeps things, its ports and its heap sizes."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stock-system"


@dataclass(frozen=True)
class StackSettings:
    """Everything the native stack needs to know; built by the CLI or by the test fixtures."""

    run_dir: Path = field(default_factory=lambda: default_cache_dir() / "run")
    cache_dir: Path = field(default_factory=default_cache_dir)
    # Node 1's address; in a cluster node n listens on the n-th address from it (127.0.0.n: every
    # 127/8 address is this machine on Linux), each node on the same ports.
    host: str = "127.0.0.1"
    nodes: int = 1
    # Which node a view of these settings is about (for_node); 1 on a one-node stack.
    node: int = 1
    # Every node's address by name, where they are not 127.0.0.n: in compose, one container per
    # node (zookeeper, zookeeper-2, zookeeper-3 for a ZooKeeper server's view).
    node_hosts: tuple[str, ...] = ()
    zookeeper_port: int = 2181
    # A ZooKeeper ensemble's ports for followers and for leader election (clusters only).
    zookeeper_peer_port: int = 2888
    zookeeper_election_port: int = 3888
    kafka_port: int = 9092
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    # JMX, for nodetool (clusters only): node n on cassandra_jmx_port + n - 1, loopback only.
    cassandra_jmx_port: int = 7199
    zookeeper_heap: str = "256m"
    kafka_heap: str = "768m"
    cassandra_heap: str = "1g"
    # Skips fsync of Cassandra's system tables: schema changes (a keyspace per test) get several
    # times faster. Only for throwaway dev and test nodes of one: it also keeps schema changes
    # out of the commit log, so a cluster's node killed and restarted would come back without
    # a keyspace the others have (and answer reads with INCOMPATIBLE_SCHEMA). Never in a cluster.
    cassandra_unsafe_system: bool = True
    start_timeout_s: float = 240.0
    java: str = "java"
    mvn: str = "mvn"
    # In a container (python -m stack serve) the services listen on every interface and other
    # containers reach them by name; natively all of these stay unset and mean `host`.
    bind_host: str | None = None
    advertised_host: str | None = None
    zookeeper_host: str | None = None
    # A second Kafka listener for clients outside the container network (the host): the port it
    # listens on inside the container and the host:port those clients are told to use.
    kafka_external_port: int | None = None
    kafka_external_advertised: str | None = None

    @property
    def node_ids(self) -> range:
        return range(1, self.nodes + 1)

    def node_host(self, node: int | None = None) -> str:
        """The address of `node` (default: the node this view is about)."""
        n = node or self.node
        if self.node_hosts:
            return self.node_hosts[n - 1]
        return self.host if n == 1 else str(ipaddress.ip_address(self.host) + (n - 1))

    def for_node(self, node: int) -> StackSettings:
        """These settings as node `node` sees them: its addresses, its JMX port."""
        if node not in self.node_ids:
            raise ValueError(f"node {node} is not one of 1..{self.nodes}")
        return replace(self, node=node)

    @property
    def listen_host(self) -> str:
        return self.bind_host or self.node_host()

    @property
    def public_host(self) -> str:
        return self.advertised_host or self.node_host()

    @property
    def node_jmx_port(self) -> int:
        return self.cassandra_jmx_port + self.node - 1

    @property
    def bootstrap_servers(self) -> str:
        """Every broker: a client that finds one down asks the next."""
        return ",".join(f"{self.node_host(n)}:{self.kafka_port}" for n in self.node_ids)

    @property
    def zookeeper_connect(self) -> str:
        if self.zookeeper_host:  # one name, or the ensemble's names comma separated
            hosts = self.zookeeper_host.split(",")
            return ",".join(f"{h.strip()}:{self.zookeeper_port}" for h in hosts)
        return ",".join(f"{self.node_host(n)}:{self.zookeeper_port}" for n in self.node_ids)

    @property
    def cassandra_hosts(self) -> list[str]:
        return [self.node_host(n) for n in self.node_ids]

    def with_ports(self, **ports: int) -> StackSettings:
        return replace(self, **ports)

    @classmethod
    def on_free_ports(cls, run_dir: Path, **overrides: object) -> StackSettings:
        """A throwaway stack's settings (tests, benchmarks): every port picked free by the OS."""
        names = ("zookeeper_port", "zookeeper_peer_port", "zookeeper_election_port", "kafka_port",
                 "cassandra_port", "cassandra_storage_port")  # fmt: skip
        ports: dict[str, object] = {name: free_port() for name in names}
        ports["cassandra_jmx_port"] = free_ports_in_a_row(int(overrides.get("nodes", 1)))
        return cls(run_dir=run_dir, **{**ports, **overrides})


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports_in_a_row(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive ports that are free now (one per node)."""
    for _ in range(100):
        first = free_port(host)
        if first + count > 65536:
            continue
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    s = held.enter_context(socket.socket())
                    s.bind((host, port))
            return first
        except OSError:
            continue
    raise OSError(f"no {count} free ports in a row on {host}")
