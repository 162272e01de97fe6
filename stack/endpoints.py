"""The services to run against: the running ones the environment names, or a private stack.

Tests and benchmarks both need "ZooKeeper, Kafka and Cassandra, wherever they are": with
KAFKA_BOOTSTRAP_SERVERS and CASSANDRA_HOSTS set, those services are used and nothing is
started; otherwise a throwaway stack starts on free ports and stops at the end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from stack.native import NativeStack
from stack.services import CASSANDRA, KAFKA, SERVICES
from stack.settings import StackSettings, default_cache_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    # Empty when the caller did not need Kafka (services(..., needs=(CASSANDRA,))).
    bootstrap_servers: str
    cassandra_hosts: tuple[str, ...]
    cassandra_port: int
    zookeeper_connect: str | None
    # The stack started for this run; None when attached to services started elsewhere.
    stack: NativeStack | None
    cache_dir: Path

    def env(self) -> dict[str, str]:
        """The variables that point a stage (or cqlsh) at these services."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "CASSANDRA_HOSTS": ",".join(self.cassandra_hosts),
            "CASSANDRA_PORT": str(self.cassandra_port),
        }
        if self.zookeeper_connect:
            env["ZOOKEEPER_CONNECT"] = self.zookeeper_connect
        return env


def attached(environ: Mapping[str, str], needs: Collection[str] = SERVICES) -> Endpoints | None:
    """The running services the environment names, if it names every one of `needs`."""
    kafka = environ.get("KAFKA_BOOTSTRAP_SERVERS") or ""
    cassandra = environ.get("CASSANDRA_HOSTS") or ""
    if (KAFKA in needs and not kafka) or (CASSANDRA in needs and not cassandra):
        return None
    cache = environ.get("STACK_CACHE_DIR")
    return Endpoints(
        bootstrap_servers=kafka,
        cassandra_hosts=tuple(h.strip() for h in cassandra.split(",") if h.strip()),
        cassandra_port=int(environ.get("CASSANDRA_PORT", "9042")),
        zookeeper_connect=environ.get("ZOOKEEPER_CONNECT") or None,
        stack=None,
        cache_dir=Path(cache) if cache else default_cache_dir(),
    )


@contextlib.contextmanager
def services(
    environ: Mapping[str, str],
    workdir: Path,
    *,
    needs: Collection[str] = SERVICES,
    **overrides: object,
) -> Iterator[Endpoints]:
    """Attach to the services the environment names, or run a private stack meanwhile.

    `needs`: the services the caller uses (a Cassandra-only benchmark attaches with
    CASSANDRA_HOSTS alone and starts only Cassandra). `overrides` are StackSettings fields for
    the private stack (heap sizes, say).
    """
    found = attached(environ, needs)
    if found is not None:
        logger.info("using the running services at %s", found.bootstrap_servers)
        yield found
        return
    settings = StackSettings.on_free_ports(workdir, **overrides)
    stack = NativeStack(settings, tie_to_parent=True)
    logger.info("starting a private stack in %s", settings.run_dir)
    stack.up(needs)
    try:
        yield Endpoints(
            bootstrap_servers=settings.bootstrap_servers if KAFKA in needs else "",
            cassandra_hosts=(settings.host,),
            cassandra_port=settings.cassandra_port,
            zookeeper_connect=settings.zookeeper_connect,
            stack=stack,
            cache_dir=settings.cache_dir,
        )
    finally:
        stack.down(needs)
