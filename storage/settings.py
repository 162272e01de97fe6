"""The storage stage's settings: one frozen object built from flags and their env twins."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass

from common import contract
from common.settings import (
    EnvArgumentParser,
    add_kafka_options,
    add_log_level,
    duration_ms,
    host_list,
    positive_int,
)

KEYSPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# Data-centre names are formatted into a CQL string literal: no quotes, nothing exotic.
_DC_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,47}$")
# Cassandra refuses TTLs above 20 years.
MAX_TTL_S = 20 * 365 * 24 * 3600


@dataclass(frozen=True)
class Replication:
    """A keyspace's replication: SimpleStrategy with one factor, or a factor per data centre."""

    strategy: str
    factors: tuple[tuple[str, int], ...]

    def cql_map(self) -> str:
        """The replication map as CQL text, built only from validated names and numbers."""
        if self.strategy == "SimpleStrategy":
            return f"{{'class': 'SimpleStrategy', 'replication_factor': {self.factors[0][1]}}}"
        pairs = ", ".join(f"'{dc}': {n}" for dc, n in self.factors)
        return f"{{'class': 'NetworkTopologyStrategy', {pairs}}}"

    def __str__(self) -> str:
        if self.strategy == "SimpleStrategy":
            return f"SimpleStrategy:{self.factors[0][1]}"
        return "NetworkTopologyStrategy:" + ",".join(f"{dc}={n}" for dc, n in self.factors)


def keyspace_name(text: str) -> str:
    # Keyspace names cannot be bind markers, so this check is what makes formatting them safe.
    if not KEYSPACE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a usable keyspace name: use a lower-case letter followed by up to "
            "47 lower-case letters, digits or _ (e.g. stocks)"
        )
    return text


def _factor(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 99:
        raise argparse.ArgumentTypeError(f"replication factor must be 1 to 99, got {text!r}")
    return int(text)


def replication(text: str) -> Replication:
    """'SimpleStrategy:1' or 'NetworkTopologyStrategy:dc1=3,dc2=2'."""
    strategy, sep, rest = text.strip().partition(":")
    if strategy == "SimpleStrategy" and sep:
        return Replication(strategy, (("replication_factor", _factor(rest.strip())),))
    if strategy == "NetworkTopologyStrategy" and sep:
        factors: list[tuple[str, int]] = []
        for item in rest.split(","):
            dc, eq, n = item.strip().partition("=")
            if not eq or not _DC_PATTERN.match(dc):
                raise argparse.ArgumentTypeError(
                    f"{item.strip()!r} is not dc=factor (e.g. NetworkTopologyStrategy:dc1=3,dc2=2)"
                )
            if dc in dict(factors):
                raise argparse.ArgumentTypeError(f"data centre {dc!r} is given twice")
            factors.append((dc, _factor(n.strip())))
        return Replication(strategy, tuple(factors))
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a replication setting: use SimpleStrategy:1 or "
        "NetworkTopologyStrategy:dc1=3,dc2=2"
    )


def ttl_seconds(text: str) -> int:
    """A duration as whole seconds for CQL's TTL; 'none' or '0' means rows never expire."""
    if text.strip().lower() in ("", "0", "none"):
        return 0
    ms = duration_ms(text)
    if ms % 1000:
        raise argparse.ArgumentTypeError(f"TTL {text!r} must be whole seconds (e.g. 30d, 12h)")
    if ms // 1000 > MAX_TTL_S:
        raise argparse.ArgumentTypeError(f"TTL {text!r} is over Cassandra's 20-year limit")
    return ms // 1000


@dataclass(frozen=True)
class StorageSettings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    ticks_topic: str = contract.TICKS_TOPIC
    aggregates_topic: str = contract.AGGREGATES_TOPIC
    dead_letter_topic: str = contract.DEAD_LETTER_TOPIC
    consumer_group: str = "stock-storage"
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 9042
    keyspace: str = "stocks"
    replication: Replication = Replication("SimpleStrategy", (("replication_factor", 1),))
    ticks_ttl_s: int = 0
    aggregates_ttl_s: int = 0
    write_concurrency: int = 32
    batch_size: int = 5000
    log_level: str = "INFO"


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m storage",
        description="Persist ticks and aggregates from Kafka into Cassandra, and query them. "
        "With no command, runs the consumer (same as `run`).",
        epilog="Options above go before the command: "
        "python -m storage --cassandra-keyspace stocks query AAPL --last 1h",
        environ=environ,
    )
    d = StorageSettings()
    add = parser.add_env_argument
    add_kafka_options(parser, "ticks", "aggregates", "dead-letter")
    add(
        "--consumer-group",
        env="CONSUMER_GROUP",
        default=d.consumer_group,
        help="Kafka consumer group (offsets are committed only after the writes)",
    )
    add(
        "--cassandra-hosts",
        env="CASSANDRA_HOSTS",
        type=host_list,
        default=",".join(d.cassandra_hosts),
        help="Cassandra contact points, comma separated",
    )
    add(
        "--cassandra-port",
        env="CASSANDRA_PORT",
        type=positive_int,
        default=d.cassandra_port,
        help="Cassandra native-protocol port",
    )
    add(
        "--cassandra-keyspace",
        env="CASSANDRA_KEYSPACE",
        type=keyspace_name,
        default=d.keyspace,
        help="keyspace holding ticks, aggregates and latest_prices",
    )
    add(
        "--cassandra-replication",
        env="CASSANDRA_REPLICATION",
        type=replication,
        default=str(d.replication),
        help="keyspace replication when it is created: SimpleStrategy:N or "
        "NetworkTopologyStrategy:dc1=N,dc2=M",
    )
    add(
        "--ticks-ttl",
        env="TICKS_TTL",
        type=ttl_seconds,
        default="none",
        help="how long tick rows live (e.g. 30d); none keeps them",
    )
    add(
        "--aggregates-ttl",
        env="AGGREGATES_TTL",
        type=ttl_seconds,
        default="none",
        help="how long aggregate rows live (e.g. 365d); none keeps them",
    )
    add(
        "--write-concurrency",
        env="WRITE_CONCURRENCY",
        type=positive_int,
        default=d.write_concurrency,
        help="Cassandra requests in flight at once",
    )
    add(
        "--batch-size",
        env="BATCH_SIZE",
        type=positive_int,
        default=d.batch_size,
        help="most Kafka records polled and written per batch",
    )
    add_log_level(parser)

    sub = parser.add_subparsers(dest="command", metavar="{run,init-schema,query}")
    sub.add_parser("run", help="consume the ticks and aggregates topics into Cassandra (default)")
    sub.add_parser("init-schema", help="create the keyspace and tables if missing, then exit")
    query = sub.add_parser(
        "query",
        help="print stored ticks, bars or latest prices",
        description="Print stored data: `query AAPL --last 1h`, `query AAPL --window 1m "
        "--from 2025-08-27T13:30:00Z --to 2025-08-27T14:30:00Z`, `query latest`. "
        "Times without an offset are UTC.",
    )
    query.add_argument("target", help="a symbol such as AAPL, or `latest` for every symbol")
    span = query.add_mutually_exclusive_group()
    span.add_argument("--last", type=duration_ms, help="the span up to now, e.g. 15m, 1h, 2d")
    span.add_argument("--from", dest="start", help="start time, ISO 8601 (e.g. 2025-08-27T13:30Z)")
    query.add_argument("--to", dest="end", help="end time, ISO 8601 (default: now)")
    query.add_argument(
        "--window",
        type=duration_ms,
        help="show aggregates of this window size (e.g. 1m) instead of ticks",
    )
    query.add_argument("--limit", type=positive_int, default=100, help="most rows shown")
    query.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parser  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> StorageSettings:
    return StorageSettings(
        kafka_bootstrap=args.bootstrap_servers,
        ticks_topic=args.ticks_topic,
        aggregates_topic=args.aggregates_topic,
        dead_letter_topic=args.dead_letter_topic,
        consumer_group=args.consumer_group,
        cassandra_hosts=tuple(args.cassandra_hosts),
        cassandra_port=args.cassandra_port,
        keyspace=args.cassandra_keyspace,
        replication=args.cassandra_replication,
        ticks_ttl_s=args.ticks_ttl,
        aggregates_ttl_s=args.aggregates_ttl,
        write_concurrency=args.write_concurrency,
        batch_size=args.batch_size,
        log_level=args.log_level,
    )
