"""The native stack's settings: where it keeps things, its ports and its heap sizes."""

from __future__ import annotations

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
    host: str = "127.0.0.1"
    zookeeper_port: int = 2181
    kafka_port: int = 9092
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    zookeeper_heap: str = "256m"
    kafka_heap: str = "768m"
    cassandra_heap: str = "1g"
    # Skips fsync of Cassandra's system tables: schema changes (a keyspace per test) get several
    # times faster. Only for throwaway dev and test nodes.
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
    def listen_host(self) -> str:
        return self.bind_host or self.host

    @property
    def public_host(self) -> str:
        return self.advertised_host or self.host

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def zookeeper_connect(self) -> str:
        return f"{self.zookeeper_host or self.host}:{self.zookeeper_port}"

    def with_ports(self, **ports: int) -> StackSettings:
        return replace(self, **ports)

    @classmethod
    def on_free_ports(cls, run_dir: Path, **overrides: object) -> StackSettings:
        """A throwaway stack's settings (tests, benchmarks): every port picked free by the OS."""
        ports = {
            name: free_port()
            for name in ("zookeeper_port", "kafka_port", "cassandra_port", "cassandra_storage_port")
        }
        return cls(run_dir=run_dir, **{**ports, **overrides})


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
