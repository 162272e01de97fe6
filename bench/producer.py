"""python -m bench.producer: simulated ticks/s into Kafka, beside Kafka's own Java producer.

Both run in one go against the same broker with the same batching, compression, acks and
idempotence, the same record count and the same record size (the simulated ticks' average), so
their ratio is a fair measure of what one Python process costs next to the Java client. A third
row shows the straightforward Python path (json.dumps of the dataclass, the client's key
partitioner) to show what the producer's hot-path choices buy.

With KAFKA_BOOTSTRAP_SERVERS unset it starts its own ZooKeeper and Kafka on free ports in a
temporary directory, and stops them at the end. A benchmark sits above the stack: it may start
services (stack/) and drive the producer's own pieces, which no stage may do.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.cpu import cpu_model
from bench.results import RESULTS_DIR, publish, stamp
from common.contract import now_ms
from common.logs import configure_logging
from common.settings import (
    LOG_LEVEL,
    EnvArgumentParser,
    add_options,
    non_negative_int,
    option,
    parse_settings,
    positive_int,
    switch,
)
from common.topics import ensure_topics
from producer.publisher import Publisher
from producer.runner import runner_for
from producer.settings import DEFAULT_SYMBOLS
from producer.settings import parse_settings as producer_settings
from producer.sources import build_source
from producer.sources.simulated import simulated_ticks
from producer.stats import ProducerCounters
from stack import NativeStack, StackSettings, artifacts
from stack.settings import default_cache_dir

logger = logging.getLogger(__name__)
SYMBOLS = (*DEFAULT_SYMBOLS, "TSLA", "META", "NFLX", "AMD", "INTC")


@dataclass(frozen=True)
class Figure:
    name: str
    records: int
    seconds: float
    record_bytes: float

    @property
    def per_s(self) -> float:
        return self.records / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.records * self.record_bytes / self.seconds / 1e6


@contextmanager
def broker(bootstrap: str | None) -> Iterator[tuple[str, Path]]:
    """(bootstrap servers, jar cache) of the given broker, or of one started here."""
    if bootstrap:
        yield bootstrap, default_cache_dir()
        return
    with tempfile.TemporaryDirectory(prefix="producer-bench-") as run_dir:
        settings = StackSettings.on_free_ports(Path(run_dir))
        stack = NativeStack(settings, tie_to_parent=True)
        logger.info("starting ZooKeeper and Kafka for the benchmark in %s", run_dir)
        stack.up(["zookeeper", "kafka"])
        try:
            yield settings.bootstrap_servers, settings.cache_dir
        finally:
            stack.down(["zookeeper", "kafka"])


# Topics the benchmark made, deleted at the end when it ran on a broker it did not start.
CREATED: list[str] = []


def _topic(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    CREATED.append(name)
    return name


def _delete_topics(bootstrap: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        existing = set(admin.list_topics())
        mine = [t for t in CREATED if t in existing]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


def bench_producer(bootstrap: str, n: int, kafka_args: list[str]) -> Figure:
    """The real producer path (runner, publisher, simulated source), timed past set-up."""
    topic = _topic("bench-ticks")
    CREATED.append(topic + "-dl")
    argv = ["--symbols", ",".join(SYMBOLS), "--sim-rate", "0", "--max-ticks", str(n),
            "--sim-start", str(now_ms()), "--ticks-topic", topic, "--dead-letter-topic",
            topic + "-dl", "--stats-interval", "1h", *kafka_args]  # fmt: skip
    settings = producer_settings(argv, {"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    stop, counters = threading.Event(), ProducerCounters()
    source = build_source(settings, stop)
    publisher = Publisher(settings, counters, source.name)
    publisher.open()  # topic creation and connecting are not what is measured
    started = time.perf_counter()
    runner_for(settings, source, publisher, counters, stop).run()
    took = time.perf_counter() - started
    if counters.published != n or counters.delivery_failed:
        raise RuntimeError(f"benchmark run incomplete: {counters.line()}")
    total = sum(
        len(t.to_json())
        for t in simulated_ticks(settings.sim_seed, SYMBOLS, n, settings.sim_start_ms)
    )
    return Figure("python producer (python -m producer)", n, took, total / n)


def bench_naive(bootstrap: str, n: int, linger: int, batch: int, compression: str | None) -> Figure:
    """The obvious loop: json.dumps(asdict(tick)) and the client's key partitioner per record."""
    from kafka import KafkaProducer

    topic = _topic("bench-naive")
    ensure_topics(bootstrap, [topic], partitions=3)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger,
        batch_size=batch, compression_type=compression,
    )  # fmt: skip
    ticks = simulated_ticks(42, SYMBOLS, n, now_ms())
    size = 0
    started = time.perf_counter()
    for tick in ticks:
        value = json.dumps(asdict(tick.validated()), separators=(",", ":")).encode()
        size += len(value)
        producer.send(topic, key=tick.symbol.encode(), value=value)
    producer.flush()
    took = time.perf_counter() - started
    producer.close()
    return Figure("python, naive loop (json.dumps, key hashing)", n, took, size / n)


def bench_java(
    bootstrap: str, cache_dir: Path, n: int, size: int, linger: int, batch: int, compression: str
) -> Figure:
    jars = artifacts.resolve(cache_dir, artifacts.KAFKA)
    topic = _topic("bench-java")
    ensure_topics(bootstrap, [topic], partitions=3)
    cmd = ["java", "-Xmx512m", "-cp", os.pathsep.join(str(j) for j in jars),
           "-Dlog4j.configuration=file:/dev/null",
           "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
           "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
           "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
           "enable.idempotence=true", f"linger.ms={linger}", f"batch.size={batch}",
           f"compression.type={compression}"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    final = re.search(r"(\d+) records sent, ([\d.]+) records/sec", result.stdout)
    if result.returncode != 0 or final is None:
        raise RuntimeError(f"ProducerPerformance failed:\n{result.stdout[-1500:]}{result.stderr}")
    records, rate = int(final[1]), float(final[2])
    return Figure("kafka ProducerPerformance (Java)", records, records / rate, size)


@dataclass(frozen=True)
class ProducerBenchSettings:
    ticks: int = option("--ticks", "BENCH_TICKS", "300000", "records per run", positive_int)
    linger_ms: int = option(
        "--linger-ms", "BENCH_LINGER_MS", "20", "the clients' linger.ms", non_negative_int
    )
    batch_size: int = option(
        "--batch-size", "BENCH_BATCH_SIZE", "262144", "the clients' batch.size in bytes",
        positive_int,
    )  # fmt: skip
    compression: str = option(
        "--compression", "BENCH_COMPRESSION", "gzip", "the clients' compression",
        choices=("none", "gzip"),
    )  # fmt: skip
    skip_naive: bool = switch("--skip-naive", "BENCH_SKIP_NAIVE", "skip the naive Python row")
    repeat: int = option(
        "--repeat", "BENCH_REPEAT", "3",
        "runs of each Python variant, interleaved; the best is shown (a shared machine's other "
        "load only ever slows a run down)",
        positive_int,
    )  # fmt: skip
    results_dir: Path = RESULTS_DIR.field()
    # The stages' INFO lines would bury the table.
    log_level: str = replace(LOG_LEVEL, default="WARNING").field()


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m bench.producer", description=__doc__.split("\n\n")[0], environ=environ
    )
    add_options(parser, ProducerBenchSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, _ = parse_settings(ProducerBenchSettings, build_parser(), argv)
    configure_logging(args.log_level)
    compression = None if args.compression == "none" else args.compression
    kafka_args = ["--kafka-linger-ms", str(args.linger_ms), "--kafka-batch-size",
                  str(args.batch_size), "--kafka-compression", args.compression]  # fmt: skip

    with broker(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")) as (bootstrap, cache_dir):
        try:
            # A short warm-up so neither side pays for the broker's first segment files.
            bench_producer(bootstrap, 20_000, kafka_args)
            runs: dict[str, list[Figure]] = {}
            for _ in range(args.repeat):
                f = bench_producer(bootstrap, args.ticks, kafka_args)
                runs.setdefault(f.name, []).append(f)
                if not args.skip_naive:
                    f = bench_naive(
                        bootstrap, args.ticks, args.linger_ms, args.batch_size, compression
                    )
                    runs.setdefault(f.name, []).append(f)
            figures = [max(fs, key=lambda f: f.per_s) for fs in runs.values()]
            size = round(figures[0].record_bytes)
            figures.append(
                bench_java(bootstrap, cache_dir, args.ticks, size, args.linger_ms,
                           args.batch_size, args.compression)
            )  # fmt: skip
        finally:
            _delete_topics(bootstrap)

    publish(report(args, figures, runs), args.results_dir, f"producer-{stamp()}")
    return 0


def report(
    args: ProducerBenchSettings, figures: list[Figure], runs: dict[str, list[Figure]]
) -> str:
    java = figures[-1].per_s
    goal = figures[0].per_s >= 50_000
    return "\n".join([
        f"producer benchmark: {args.ticks:,} records, {len(SYMBOLS)} symbols, acks=all, "
        f"idempotent, linger.ms={args.linger_ms}, batch.size={args.batch_size}, "
        f"compression={args.compression}, 3 partitions; {cpu_model()}",
        f"best of {args.repeat} interleaved runs for the Python rows; one Java run",
        f"{'run':<44} {'records/s':>12} {'MB/s':>8} {'avg bytes':>10} {'vs Java':>8}",
        *[f"{f.name:<44} {f.per_s:>12,.0f} {f.mb_per_s:>8.2f} {f.record_bytes:>10.1f} "
          f"{f.per_s / java:>8.2f}" for f in figures],
        *[f"  {name}, every run: {', '.join(f'{f.per_s:,.0f}' for f in fs)} records/s"
          for name, fs in runs.items()],
        f"goal >= 50,000 ticks/s from one Python process: {'met' if goal else 'NOT met'}",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
