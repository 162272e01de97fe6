"""The fault benchmark's settings: each option declared once (flag, env twin, default, check)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.pipeline.settings import seconds
from bench.results import RESULTS_DIR
from common.settings import (
    LOG_LEVEL,
    EnvArgumentParser,
    add_options,
    option,
    parse_settings,
    positive_int,
)

BROKER, ZOOKEEPER, CASSANDRA = "broker", "zookeeper", "cassandra"
FAULTS = (BROKER, ZOOKEEPER, CASSANDRA)


def fault_list(value: str) -> tuple[str, ...]:
    picked = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    unknown = [p for p in picked if p not in FAULTS]
    if unknown or not picked:
        raise argparse.ArgumentTypeError(
            f"{value!r}: name faults among {','.join(FAULTS)} (comma-separated)"
        )
    return picked


@dataclass(frozen=True)
class FaultBenchSettings:
    rate: int = option(
        "--rate", "BENCH_RATE", "1000", "ticks/s offered through every phase", positive_int
    )
    symbols: int = option(
        "--symbols", "BENCH_SYMBOLS", "12", "symbols the simulated producer cycles through",
        positive_int,
    )  # fmt: skip
    faults: tuple[str, ...] = option(
        "--faults", "BENCH_FAULTS", ",".join(FAULTS), "the faults to run, in this order",
        fault_list,
    )  # fmt: skip
    before_s: float = option(
        "--before", "BENCH_BEFORE", "30s", "load before each fault (the baseline)", seconds
    )
    broker_down_s: float = option(
        "--broker-down", "BENCH_BROKER_DOWN", "30s", "how long a killed broker stays down",
        seconds,
    )  # fmt: skip
    zookeeper_down_s: float = option(
        "--zookeeper-down", "BENCH_ZOOKEEPER_DOWN", "30s",
        "how long the killed ZooKeeper leader stays down", seconds,
    )  # fmt: skip
    cassandra_down_s: float = option(
        "--cassandra-down", "BENCH_CASSANDRA_DOWN", "60s",
        "how long a killed Cassandra node stays down", seconds,
    )  # fmt: skip
    after_s: float = option("--after", "BENCH_AFTER", "30s", "load after the node is back", seconds)
    replication_s: float = option(
        "--replication-duration", "BENCH_REPLICATION_DURATION", "60s",
        "how long each of RF 1 and RF 3 is offered the rate (0s: skip that comparison)",
        seconds,
    )  # fmt: skip
    results_dir: Path = RESULTS_DIR.field()
    log_level: str = LOG_LEVEL.field()

    def down_s(self, fault: str) -> float:
        return {BROKER: self.broker_down_s, ZOOKEEPER: self.zookeeper_down_s,
                CASSANDRA: self.cassandra_down_s}[fault]  # fmt: skip


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m bench.faults",
        description="Kills nodes of a three-node cluster (python -m stack up --nodes 3) while "
        "the producer and storage carry ticks, and reports per fault the recovery time and "
        "tick->row during it; then the whole pipeline at replication 3 against 1, side by side.",
        environ=environ,
    )
    add_options(parser, FaultBenchSettings)
    return parser


def parse(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> FaultBenchSettings:
    settings, _ = parse_settings(FaultBenchSettings, build_parser(environ), argv)
    return settings
