"""The processor's settings: one frozen object; its fields declare the flags and env twins."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.settings import (
    AGGREGATES_TOPIC_OPTION,
    BOOTSTRAP_SERVERS,
    DEAD_LETTER_TOPIC_OPTION,
    LOG_LEVEL,
    READY_FILE,
    TICKS_TOPIC_OPTION,
    WINDOWS,
    EnvArgumentParser,
    add_options,
    duration_ms,
    format_duration,
    non_negative_int,
    option,
    path_value,
    positive_int,
    settings_from,
)

STARTING_OFFSETS = ("earliest", "latest")
MASTER_PREFIXES = ("local", "spark://", "yarn", "k8s://")
JARS_HINT = "`python -m stack jars` prints them for this machine"


def jar_list(text: str) -> tuple[Path, ...]:
    jars = tuple(Path(p.strip()).resolve() for p in text.split(",") if p.strip())
    if not jars:
        raise argparse.ArgumentTypeError(f"give comma-separated paths of the jars ({JARS_HINT})")
    return jars


def spark_master(text: str) -> str:
    if not text.startswith(MASTER_PREFIXES):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Spark master URL: use local[*], local[N] or spark://host:7077"
        )
    return text


def directory(text: str) -> Path:
    return path_value(text).resolve()


def offsets_cap(text: str) -> int | None:
    """A cap on records per micro-batch; 0 means none (None)."""
    return non_negative_int(text) or None


@dataclass(frozen=True)
class ProcessorSettings:
    bootstrap_servers: str = BOOTSTRAP_SERVERS.field()
    ticks_topic: str = TICKS_TOPIC_OPTION.field()
    aggregates_topic: str = AGGREGATES_TOPIC_OPTION.field()
    dead_letter_topic: str = DEAD_LETTER_TOPIC_OPTION.field()
    spark_master: str = option(
        "--spark-master",
        "SPARK_MASTER",
        "local[*]",
        "local[*] natively, spark://host:7077 for a cluster",
        spark_master,
    )
    # Tumbling window sizes in milliseconds, ascending and distinct.
    windows_ms: tuple[int, ...] = WINDOWS.field()
    watermark_ms: int = option(
        "--watermark",
        "WATERMARK",
        "30s",
        "how late (in event time) a tick may arrive and still count",
        duration_ms,
    )
    checkpoint_dir: Path = option(
        "--checkpoint-dir",
        "CHECKPOINT_DIR",
        "checkpoints",
        "the query's checkpoint (offsets, window and duplicate state); keep it across restarts",
        directory,
    )
    trigger_interval_ms: int = option(
        "--trigger-interval",
        "TRIGGER_INTERVAL",
        "1s",
        "how often a micro-batch starts (a batch still running delays the next)",
        duration_ms,
    )
    max_offsets_per_trigger: int | None = option(
        "--max-offsets-per-trigger",
        "MAX_OFFSETS_PER_TRIGGER",
        "200000",
        "cap on records per micro-batch (0: no cap)",
        offsets_cap,
    )
    min_offsets_per_trigger: int | None = option(
        "--min-offsets-per-trigger",
        "MIN_OFFSETS_PER_TRIGGER",
        "500",
        "a micro-batch waits for this many new records (at most --max-offsets-per-trigger), "
        "or for --max-trigger-delay (0: it never waits)",
        offsets_cap,
    )
    max_trigger_delay_ms: int = option(
        "--max-trigger-delay",
        "MAX_TRIGGER_DELAY",
        "15s",
        "the longest a micro-batch waits for --min-offsets-per-trigger records (at a few ticks "
        "a second: how often windows are updated; 5s costs 0.17 cores more at rest)",
        duration_ms,
    )
    shuffle_partitions: int = option(
        "--shuffle-partitions",
        "SHUFFLE_PARTITIONS",
        "2",
        "state partitions: the core count of the executors (fixed by the checkpoint)",
        positive_int,
    )
    starting_offsets: str = option(
        "--starting-offsets",
        "STARTING_OFFSETS",
        "earliest",
        "where a query without a checkpoint starts reading",
        choices=STARTING_OFFSETS,
    )
    # None: not given; the job then refuses to start (except under spark-submit, whose --jars
    # put the connector on the classpath).
    spark_jars: tuple[Path, ...] | None = option(
        "--spark-jars",
        "SPARK_JARS",
        None,
        f"the Spark Kafka connector jars, comma separated ({JARS_HINT})",
        jar_list,
    )
    ready_file: Path | None = READY_FILE.field()
    log_level: str = LOG_LEVEL.field()

    def __post_init__(self) -> None:
        if not self.windows_ms or list(self.windows_ms) != sorted(set(self.windows_ms)):
            raise ValueError("windows_ms must be distinct sizes in ascending order")
        if self.starting_offsets not in STARTING_OFFSETS:
            raise ValueError(f"starting_offsets must be one of {STARTING_OFFSETS}")
        topics = [self.ticks_topic, self.aggregates_topic, self.dead_letter_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(
                "--ticks-topic, --aggregates-topic and --dead-letter-topic must be three "
                f"different topics, got {', '.join(topics)}"
            )

    def checkpoint(self, query: str) -> Path:
        """A query keeps its checkpoint under checkpoint_dir."""
        return self.checkpoint_dir / query

    def records_a_batch_waits_for(self) -> int | None:
        """--min-offsets-per-trigger, never above --max-offsets-per-trigger (Spark refuses a
        minimum above the maximum); None: a batch never waits."""
        least = self.min_offsets_per_trigger
        if least and self.max_offsets_per_trigger:
            return min(least, self.max_offsets_per_trigger)
        return least

    def describe(self) -> str:
        windows = ",".join(format_duration(w) for w in self.windows_ms)
        return (
            f"master={self.spark_master} bootstrap={self.bootstrap_servers} "
            f"ticks={self.ticks_topic} aggregates={self.aggregates_topic} "
            f"dead_letters={self.dead_letter_topic} windows={windows} "
            f"watermark={format_duration(self.watermark_ms)} "
            f"trigger={format_duration(self.trigger_interval_ms)} "
            f"max_offsets_per_trigger={self.max_offsets_per_trigger or 'unlimited'} "
            f"min_offsets_per_trigger={self.min_offsets_per_trigger or 0} "
            f"max_trigger_delay={format_duration(self.max_trigger_delay_ms)} "
            f"shuffle_partitions={self.shuffle_partitions} checkpoints={self.checkpoint_dir}"
        )


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m processor",
        description="Aggregate ticks per symbol and event-time window with Spark Structured "
        "Streaming: ticks topic in, aggregates topic out (update mode), refused records to the "
        "dead-letter topic.",
        environ=os.environ if environ is None else environ,
    )
    add_options(parser, ProcessorSettings)
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ProcessorSettings:
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    try:
        return settings_from(ProcessorSettings, args)
    except ValueError as e:
        parser.error(str(e))
