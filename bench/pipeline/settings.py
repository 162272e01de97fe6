"""The pipeline benchmark's settings: each option declared once (flag, env twin, default, check)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.results import RESULTS_DIR
from common.settings import (
    CASSANDRA_PORT,
    LOG_LEVEL,
    EnvArgumentParser,
    add_options,
    duration_ms,
    option,
    parse_settings,
    positive_int,
    servers,
    text,
    tuple_of,
    window_list,
)


def rate_list(value: str) -> tuple[int, ...]:
    """Offered rates, ascending and distinct: each rate is run once, the lightest first."""
    try:
        rates = tuple(sorted({positive_int(p.strip()) for p in value.split(",") if p.strip()}))
    except argparse.ArgumentTypeError:
        rates = ()
    if not rates:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a list of rates: use ticks/s above 0, e.g. 1000,5000,20000"
        )
    return rates


def seconds(value: str) -> float:
    """A duration ('45s', '2m') as seconds."""
    return duration_ms(value) / 1000


@dataclass(frozen=True)
class BenchSettings:
    rates: tuple[int, ...] = option(
        "--rates",
        "BENCH_RATES",
        "1000,5000,20000",
        "offered rates in ticks/s over all symbols, run in ascending order",
        rate_list,
    )
    duration_s: float = option(
        "--duration", "BENCH_DURATION", "45s", "how long each rate is offered", seconds
    )
    symbols: int = option(
        "--symbols",
        "BENCH_SYMBOLS",
        "500",
        "simulated symbols the ticks are spread over",
        positive_int,
    )
    windows_ms: tuple[int, ...] = option(
        "--windows",
        "BENCH_WINDOWS",
        "10s",
        "the processor's window sizes (short ones close often: more latency samples)",
        window_list,
    )
    drain_timeout_s: float = option(
        "--drain-timeout",
        "BENCH_DRAIN_TIMEOUT",
        "90s",
        "how long to wait after a rate for every stage to catch up",
        seconds,
    )
    latency_symbols: int = option(
        "--latency-symbols",
        "BENCH_LATENCY_SYMBOLS",
        "25",
        "symbols whose every tick row is read back for tick->row latency",
        positive_int,
    )
    results_dir: Path = RESULTS_DIR.field()
    # Unset (both): the bench starts a private stack on free ports.
    bootstrap_servers: str | None = option(
        "--bootstrap-servers",
        "KAFKA_BOOTSTRAP_SERVERS",
        None,
        "use this Kafka (with CASSANDRA_HOSTS); unset: start a stack of its own",
        servers,
    )
    cassandra_hosts: tuple[str, ...] | None = option(
        "--cassandra-hosts",
        "CASSANDRA_HOSTS",
        None,
        "use this Cassandra (with KAFKA_BOOTSTRAP_SERVERS)",
        tuple_of(text),
    )
    cassandra_port: int = CASSANDRA_PORT.field()
    spark_master: str = option(
        "--spark-master", "SPARK_MASTER", "local[2]", "the processor's master", text
    )
    log_level: str = LOG_LEVEL.field()

    def __post_init__(self) -> None:
        if (self.bootstrap_servers is None) != (self.cassandra_hosts is None):
            raise ValueError(
                "set both KAFKA_BOOTSTRAP_SERVERS and CASSANDRA_HOSTS to use running services, "
                "or neither to let the bench start its own"
            )
        if self.latency_symbols > self.symbols:
            raise ValueError(
                f"--latency-symbols {self.latency_symbols} is more than --symbols {self.symbols}"
            )

    @property
    def attached(self) -> bool:
        return self.bootstrap_servers is not None and self.cassandra_hosts is not None

    def services_environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` with the services these settings name (a flag beats its env twin), for
        stack.endpoints.services to attach to; without them it starts a private stack."""
        env = {
            k: v
            for k, v in environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CASSANDRA_HOSTS", "CASSANDRA_PORT")
        }
        if self.attached:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
            env["CASSANDRA_HOSTS"] = ",".join(self.cassandra_hosts)
            env["CASSANDRA_PORT"] = str(self.cassandra_port)
        return env


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m bench.pipeline",
        description="The whole pipeline at fixed offered rates: per-stage throughput, "
        "end-to-end latency. Results go to --results-dir.",
        environ=environ,
    )
    add_options(parser, BenchSettings)
    return parser


def parse(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> BenchSettings:
    settings, _ = parse_settings(BenchSettings, build_parser(environ), argv)
    return settings
