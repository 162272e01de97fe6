"""The storage stage's settings: one frozen object built from flags and their env twins."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.contract import BAR_INTERVALS
from common.settings import (
    AGGREGATES_TOPIC_OPTION,
    BARS_TOPIC_OPTION,
    BOOTSTRAP_SERVERS,
    CASSANDRA_CONSISTENCY,
    CASSANDRA_HOSTS,
    CASSANDRA_KEYSPACE,
    CASSANDRA_PORT,
    DEAD_LETTER_TOPIC_OPTION,
    LOG_LEVEL,
    READY_FILE,
    TICKS_TOPIC_OPTION,
    EnvArgumentParser,
    add_options,
    capped,
    duration_ms,
    option,
    positive_int,
    settings_from,
    text,
)

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
    bootstrap_servers: str = BOOTSTRAP_SERVERS.field()
    ticks_topic: str = TICKS_TOPIC_OPTION.field()
    aggregates_topic: str = AGGREGATES_TOPIC_OPTION.field()
    bars_topic: str = BARS_TOPIC_OPTION.field()
    dead_letter_topic: str = DEAD_LETTER_TOPIC_OPTION.field()
    consumer_group: str = option(
        "--consumer-group",
        "CONSUMER_GROUP",
        "stock-storage",
        "Kafka consumer group (offsets are committed only after the writes)",
        text,
    )
    cassandra_hosts: tuple[str, ...] = CASSANDRA_HOSTS.field()
    cassandra_port: int = CASSANDRA_PORT.field()
    consistency: str = CASSANDRA_CONSISTENCY.field()
    keyspace: str = CASSANDRA_KEYSPACE.field()
    replication: Replication = option(
        "--cassandra-replication",
        "CASSANDRA_REPLICATION",
        "SimpleStrategy:1",
        "keyspace replication when it is created: SimpleStrategy:N or "
        "NetworkTopologyStrategy:dc1=N,dc2=M",
        replication,
    )
    ticks_ttl_s: int = option(
        "--ticks-ttl",
        "TICKS_TTL",
        "none",
        "how long tick rows live (e.g. 30d); none keeps them",
        ttl_seconds,
    )
    aggregates_ttl_s: int = option(
        "--aggregates-ttl",
        "AGGREGATES_TTL",
        "none",
        "how long aggregate rows live (e.g. 365d); none keeps them",
        ttl_seconds,
    )
    write_concurrency: int = option(
        "--write-concurrency",
        "WRITE_CONCURRENCY",
        "32",
        "Cassandra requests in flight at once",
        positive_int,
    )
    batch_size: int = option(
        "--batch-size",
        "BATCH_SIZE",
        "5000",
        "most Kafka records polled and written per batch",
        positive_int,
    )
    fetch_min_bytes: int = option(
        "--fetch-min-bytes",
        "FETCH_MIN_BYTES",
        str(16 * 1024),
        "bytes the broker gathers before it answers a fetch (Kafka's fetch.min.bytes): "
        "fewer, larger writes at low rates; at 1,000 ticks/s 16 KiB is there within half a "
        "second; 1 answers as soon as one record is there",
        # Above the client's fetch.max.bytes (50 MiB) every fetch would wait its whole time.
        capped(positive_int, 50 * 1024 * 1024, "must be at most 50 MiB (52428800), got {text}"),
    )
    fetch_max_wait_ms: int = option(
        "--fetch-max-wait",
        "FETCH_MAX_WAIT",
        "500ms",
        "longest the broker holds a fetch while it gathers --fetch-min-bytes (e.g. 250ms, 1s; "
        "at most 10s): what a tick may wait in Kafka before storage writes it",
        capped(duration_ms, 10_000, "must be at most 10s, got {text}"),
    )
    ready_file: Path | None = READY_FILE.field()
    log_level: str = LOG_LEVEL.field()

    def __post_init__(self) -> None:
        topics = [self.ticks_topic, self.aggregates_topic, self.bars_topic,
                  self.dead_letter_topic]  # fmt: skip
        if len(set(topics)) != len(topics):
            raise ValueError(
                "--ticks-topic, --aggregates-topic, --bars-topic and --dead-letter-topic must "
                f"be four different topics, got {', '.join(topics)}"
            )


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m storage",
        description="Persist ticks and aggregates from Kafka into Cassandra, and query them. "
        "With no command, runs the consumer (same as `run`).",
        epilog="Options above go before the command: "
        "python -m storage --cassandra-keyspace stocks query AAPL --last 1h",
        environ=environ,
    )
    add_options(parser, StorageSettings)

    sub = parser.add_subparsers(dest="command", metavar="{run,init-schema,query}")
    sub.add_parser("run", help="consume the ticks and aggregates topics into Cassandra (default)")
    sub.add_parser("init-schema", help="create the keyspace and tables if missing, then exit")
    query = sub.add_parser(
        "query",
        help="print stored ticks, bars or latest prices",
        description="Print stored data: `query AAPL --last 1h`, `query AAPL --window 1m "
        "--from 2025-08-27T13:30:00Z --to 2025-08-27T14:30:00Z`, `query AAPL --bars 1d "
        "--last 30d`, `query latest`. "
        "Times without an offset are UTC.",
    )
    query.add_argument("target", help="a symbol such as AAPL, or `latest` for every symbol")
    span = query.add_mutually_exclusive_group()
    span.add_argument("--last", type=duration_ms, help="the span up to now, e.g. 15m, 1h, 2d")
    span.add_argument("--from", dest="start", help="start time, ISO 8601 (e.g. 2025-08-27T13:30Z)")
    query.add_argument("--to", dest="end", help="end time, ISO 8601 (default: now)")
    kind = query.add_mutually_exclusive_group()
    kind.add_argument(
        "--window",
        type=duration_ms,
        help="show aggregates of this window size (e.g. 1m) instead of ticks",
    )
    kind.add_argument(
        "--bars",
        choices=tuple(BAR_INTERVALS),
        help="show the source's history bars of this interval instead of ticks",
    )
    query.add_argument("--limit", type=positive_int, default=100, help="most rows shown")
    query.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parser  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> StorageSettings:
    return settings_from(StorageSettings, args)
