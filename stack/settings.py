"""The native stack's settings: where it keeps things, its ports and its heap sizes."""

from __future__ import annotations

import os
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

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def zookeeper_connect(self) -> str:
        return f"{self.host}:{self.zookeeper_port}"

    def with_ports(self, **ports: int) -> StackSettings:
        return replace(self, **ports)
