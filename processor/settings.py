"""The processor's settings: one frozen object built from flags and their environment twins."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.contract import AGGREGATES_TOPIC, DEAD_LETTER_TOPIC, TICKS_TOPIC
from common.settings import (
    EnvArgumentParser,
    add_kafka_options,
    add_log_level,
    duration_ms,
    format_duration,
    non_negative_int,
    positive_int,
)
from stack.settings import default_cache_dir

STARTING_OFFSETS = ("earliest", "latest")
MASTER_PREFIXES = ("local", "spark://", "yarn", "k8s://")


@dataclass(frozen=True)
class ProcessorSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    ticks_topic: str = TICKS_TOPIC
    aggregates_topic: str = AGGREGATES_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    spark_master: str = "local[*]"
    # Tumbling window sizes in milliseconds, ascending and distinct.
    windows_ms: tuple[int, ...] = (60_000,)
    watermark_ms: int = 30_000
    checkpoint_dir: Path = Path("checkpoints")
    trigger_interval_ms: int = 1000
    # None: no cap, a batch takes everything that is waiting.
    max_offsets_per_trigger: int | None = 100_000
    shuffle_partitions: int = 2
    starting_offsets: str = "earliest"
    # None: resolve the connector jars from Maven Central into cache_dir at start-up.
    spark_jars: tuple[Path, ...] | None = None
    cache_dir: Path = Path(".cache")
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.windows_ms or list(self.windows_ms) != sorted(set(self.windows_ms)):
            raise ValueError("windows_ms must be distinct sizes in ascending order")
        if self.starting_offsets not in STARTING_OFFSETS:
            raise ValueError(f"starting_offsets must be one of {STARTING_OFFSETS}")

    def checkpoint(self, query: str) -> Path:
        """Every query keeps its own checkpoint under checkpoint_dir."""
        return self.checkpoint_dir / query

    def describe(self) -> str:
        windows = ",".join(format_duration(w) for w in self.windows_ms)
        return (
            f"master={self.spark_master} bootstrap={self.bootstrap_servers} "
            f"ticks={self.ticks_topic} aggregates={self.aggregates_topic} "
            f"dead_letters={self.dead_letter_topic} windows={windows} "
            f"watermark={format_duration(self.watermark_ms)} "
            f"trigger={format_duration(self.trigger_interval_ms)} "
            f"max_offsets_per_trigger={self.max_offsets_per_trigger or 'unlimited'} "
            f"shuffle_partitions={self.shuffle_partitions} checkpoints={self.checkpoint_dir}"
        )


def window_list(text: str) -> tuple[int, ...]:
    """'10s,1m,5m' as ascending milliseconds; duplicates are refused rather than merged."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give at least one window size, e.g. 1m or 10s,1m,5m")
    sizes = [duration_ms(p) for p in parts]
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"{text!r} lists a window size twice")
    return tuple(sorted(sizes))


def jar_list(text: str) -> tuple[Path, ...]:
    jars = tuple(Path(p.strip()) for p in text.split(",") if p.strip())
    if not jars:
        raise argparse.ArgumentTypeError("give comma-separated paths of the connector jars")
    return jars


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    env = os.environ if environ is None else environ
    cache = Path(env["STACK_CACHE_DIR"]) if env.get("STACK_CACHE_DIR") else default_cache_dir()
    parser = EnvArgumentParser(
        prog="python -m processor",
        description="Aggregate ticks per symbol and event-time window with Spark Structured "
        "Streaming: ticks topic in, aggregates topic out (update mode), bad messages to the "
        "dead-letter topic.",
        environ=env,
    )
    add = parser.add_env_argument
    add_kafka_options(parser, "ticks", "aggregates", "dead-letter")
    add(
        "--spark-master",
        env="SPARK_MASTER",
        default="local[*]",
        help="local[*] natively, spark://host:7077 for a cluster",
    )
    add(
        "--windows",
        env="WINDOWS",
        type=window_list,
        default="1m",
        help="tumbling window sizes, comma separated (e.g. 10s,1m,5m)",
    )
    add(
        "--watermark",
        env="WATERMARK",
        type=duration_ms,
        default="30s",
        help="how late (in event time) a tick may arrive and still count",
    )
    add(
        "--checkpoint-dir",
        env="CHECKPOINT_DIR",
        type=Path,
        default=cache / "checkpoints" / "processor",
        help="one checkpoint per query is kept under it; keep it across restarts",
    )
    add(
        "--trigger-interval",
        env="TRIGGER_INTERVAL",
        type=duration_ms,
        default="1s",
        help="how often a micro-batch starts",
    )
    add(
        "--max-offsets-per-trigger",
        env="MAX_OFFSETS_PER_TRIGGER",
        type=non_negative_int,
        default="100000",
        help="cap on ticks per micro-batch (0: no cap)",
    )
    add(
        "--shuffle-partitions",
        env="SHUFFLE_PARTITIONS",
        type=positive_int,
        default=str(os.cpu_count() or 2),
        help="state partitions; near the core count (fixed by the checkpoint on first start)",
    )
    add(
        "--starting-offsets",
        env="STARTING_OFFSETS",
        choices=STARTING_OFFSETS,
        default="earliest",
        help="where a query without a checkpoint starts reading",
    )
    add(
        "--spark-jars",
        env="SPARK_JARS",
        type=jar_list,
        default=None,
        help="the Kafka connector jars, comma separated (default: fetched once from Maven "
        "Central into the stack cache; under spark-submit, pass --jars instead)",
    )
    add(
        "--cache-dir",
        env="STACK_CACHE_DIR",
        type=Path,
        default=cache,
        help="where the connector jars are cached",
    )
    add_log_level(parser)
    return parser  # fmt: skip


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ProcessorSettings:
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    topics = [args.ticks_topic, args.aggregates_topic, args.dead_letter_topic]
    if len(set(topics)) != len(topics):
        parser.error(
            "--ticks-topic, --aggregates-topic and --dead-letter-topic must be three different "
            f"topics, got {', '.join(topics)}"
        )
    if not args.spark_master.startswith(MASTER_PREFIXES):
        parser.error(
            f"--spark-master {args.spark_master!r} is not a Spark master URL: use local[*], "
            "local[N] or spark://host:7077"
        )
    return ProcessorSettings(
        bootstrap_servers=args.bootstrap_servers,
        ticks_topic=args.ticks_topic,
        aggregates_topic=args.aggregates_topic,
        dead_letter_topic=args.dead_letter_topic,
        spark_master=args.spark_master,
        windows_ms=args.windows,
        watermark_ms=args.watermark,
        checkpoint_dir=args.checkpoint_dir.resolve(),
        trigger_interval_ms=args.trigger_interval,
        max_offsets_per_trigger=args.max_offsets_per_trigger or None,
        shuffle_partitions=args.shuffle_partitions,
        starting_offsets=args.starting_offsets,
        spark_jars=tuple(j.resolve() for j in args.spark_jars) if args.spark_jars else None,
        cache_dir=args.cache_dir.resolve(),
        log_level=args.log_level,
    )
