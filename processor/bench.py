"""`python -m processor.bench` (make bench-processor): sustained ticks/s through the processor.

Two phases on one Spark session, 500 symbols by default:
- backlog: ticks preloaded into Kafka, then the job drains them as fast as it can (capacity);
- live: a producer thread sends at a fixed rate while the job runs (input rate beside processed
  rate, and whether it keeps up).
Figures come from the queries' own progress reports. Without KAFKA_BOOTSTRAP_SERVERS it starts
its own ZooKeeper and Kafka on free ports in a temporary directory.
"""

from __future__ import annotations

import logging
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from common.contract import Tick, now_ms
from common.logs import configure_logging
from common.settings import EnvArgumentParser, positive_int
from common.topics import ensure_topics
from processor import queries
from processor.progress import ProgressTracker
from processor.settings import ProcessorSettings, window_list

logger = logging.getLogger("processor.bench")


@dataclass(frozen=True)
class BenchSettings:
    bootstrap_servers: str | None
    symbols: int
    backlog_ticks: int
    live_rate: int
    live_seconds: int
    windows_ms: tuple[int, ...]
    max_offsets_per_trigger: int
    partitions: int
    spark_master: str
    cache_dir: Path


@dataclass
class PhaseFigures:
    phase: str
    query: str
    ticks: int
    ticks_per_s: float
    input_per_s: float
    processed_per_s: float
    p50_ms: float
    p95_ms: float
    batches: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _symbols(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


def _ticks(symbols: list[str], count: int, rng: random.Random, start_ms: int) -> list[bytes]:
    # Event time moves forward ~1 ms per tick, so windows close as they would in a live feed.
    return [
        Tick(rng.choice(symbols), round(rng.uniform(10, 500), 2), rng.randrange(1, 1000),
             start_ms + i, "bench", 0).to_json()
        for i in range(count)
    ]  # fmt: skip


def _producer(bootstrap: str):
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024
    )


def _send(producer, topic: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        producer.send(topic, payload)
    producer.flush()


class LiveFeed(threading.Thread):
    """Sends `rate` ticks per second in 100 ms slices until stopped."""

    def __init__(self, bootstrap: str, topic: str, symbols: list[str], rate: int, start_ms: int):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.symbols, self.rate = bootstrap, topic, symbols, rate
        self.start_ms = start_ms
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        producer = _producer(self.bootstrap)
        rng = random.Random(2)
        began = time.monotonic()
        try:
            while not self.stop.is_set():
                due = int((time.monotonic() - began) * self.rate) - self.sent
                if due > 0:
                    batch = _ticks(self.symbols, due, rng, self.start_ms + self.sent)
                    for payload in batch:
                        producer.send(self.topic, payload)
                    self.sent += due
                self.stop.wait(0.1)
        finally:
            producer.flush()
            producer.close()


def _figures(phase: str, name: str, reports: list[dict], ticks: int) -> PhaseFigures:
    durations = sorted(r["durationMs"]["triggerExecution"] for r in reports)
    busy_s = sum(durations) / 1000 or float("nan")
    p95_index = max(0, round(0.95 * len(durations)) - 1)
    return PhaseFigures(
        phase=phase,
        query=name,
        ticks=ticks,
        ticks_per_s=ticks / busy_s,
        input_per_s=statistics.fmean(r.get("inputRowsPerSecond") or 0.0 for r in reports),
        processed_per_s=statistics.fmean(r.get("processedRowsPerSecond") or 0.0 for r in reports),
        p50_ms=statistics.median(durations),
        p95_ms=durations[p95_index],
        batches=len(reports),
    )


def _with_data(reports: list[dict]) -> list[dict]:
    return [r for r in reports if r.get("numInputRows", 0) > 0]


def _source_rows(report: dict) -> int:
    # Offsets read, not rows: with several window sizes the aggregates query scans a record once
    # per size, and numInputRows counts every scan.
    total = 0
    for source in report.get("sources", []):
        start, end = source.get("startOffset") or {}, source.get("endOffset") or {}
        for topic, partitions in end.items():
            for partition, offset in partitions.items():
                total += offset - (start.get(topic, {}).get(partition, 0) if start else 0)
    return total


def run(bench: BenchSettings, bootstrap: str) -> list[PhaseFigures]:
    from processor.session import build_session
    from stack import artifacts

    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="processor-bench-"))
    settings = ProcessorSettings(
        bootstrap_servers=bootstrap,
        ticks_topic=f"bench-ticks-{run_id}",
        aggregates_topic=f"bench-aggregates-{run_id}",
        dead_letter_topic=f"bench-dead-letters-{run_id}",
        spark_master=bench.spark_master,
        windows_ms=bench.windows_ms,
        checkpoint_dir=workdir / "checkpoints",
        trigger_interval_ms=1000,
        max_offsets_per_trigger=bench.max_offsets_per_trigger,
        shuffle_partitions=2,
    )
    topics = [settings.ticks_topic, settings.aggregates_topic, settings.dead_letter_topic]
    ensure_topics(bootstrap, topics, partitions=bench.partitions)
    symbols = _symbols(bench.symbols)
    rng = random.Random(1)
    start_ms = now_ms() - 3_600_000

    producer = _producer(bootstrap)
    began = time.monotonic()
    _send(producer, settings.ticks_topic, _ticks(symbols, bench.backlog_ticks, rng, start_ms))
    producer.close()
    logger.info("preloaded ticks=%d in %.1fs", bench.backlog_ticks, time.monotonic() - began)

    spark = build_session(settings.spark_master, artifacts.spark_kafka_jars(bench.cache_dir))
    spark.sparkContext.setLogLevel("ERROR")
    tracker = ProgressTracker()
    running = queries.start(spark, settings, queries.Trigger(settings.trigger_interval_ms))
    reports: dict[str, list[dict]] = {q.name: [] for q in running}

    def collect() -> None:
        for report in tracker.poll(running):
            reports[report["name"]].append(report)
        for q in running:
            if not q.isActive:
                raise RuntimeError(f"query {q.name} stopped: {q.exception()}")

    def offsets_done(name: str) -> int:
        return sum(_source_rows(r) for r in reports[name])

    try:
        while min(offsets_done(n) for n in reports) < bench.backlog_ticks:
            time.sleep(0.5)
            collect()
        backlog = {n: _with_data(r)[1:] for n, r in reports.items()}  # first batch: warm-up
        marks = {n: len(r) for n, r in reports.items()}
        feed = LiveFeed(bootstrap, settings.ticks_topic, symbols, bench.live_rate,
                        start_ms + bench.backlog_ticks)  # fmt: skip
        feed.start()
        time.sleep(bench.live_seconds)
        feed.stop.set()
        feed.join()
        expected = bench.backlog_ticks + feed.sent
        deadline = time.monotonic() + 120
        while min(offsets_done(n) for n in reports) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            collect()
        live = {n: _with_data(r[marks[n] :]) for n, r in reports.items()}
    finally:
        for q in running:
            if q.isActive:
                q.stop()
        spark.stop()
    figures = []
    for name in reports:
        if backlog[name]:
            ticks = sum(_source_rows(r) for r in backlog[name])
            figures.append(_figures("backlog", name, backlog[name], ticks))
        if live[name]:
            ticks = sum(_source_rows(r) for r in live[name])
            figures.append(_figures(f"live {bench.live_rate}/s", name, live[name], ticks))
    return figures


def table(figures: list[PhaseFigures], bench: BenchSettings) -> str:
    windows = ",".join(f"{w // 1000}s" for w in bench.windows_ms)
    lines = [
        f"processor benchmark: {bench.symbols} symbols, windows {windows}, "
        f"master {bench.spark_master}, {bench.partitions} Kafka partitions, "
        f"maxOffsetsPerTrigger {bench.max_offsets_per_trigger}",
        f"{'phase':<14} {'query':<13} {'ticks':>8} {'ticks/s':>9} {'input/s':>9} "
        f"{'processed/s':>11} {'p50 ms':>7} {'p95 ms':>7} {'batches':>7}",
    ]
    for f in figures:
        lines.append(
            f"{f.phase:<14} {f.query:<13} {f.ticks:>8} {f.ticks_per_s:>9.0f} "
            f"{f.input_per_s:>9.0f} {f.processed_per_s:>11.0f} {f.p50_ms:>7.0f} "
            f"{f.p95_ms:>7.0f} {f.batches:>7}"
        )
    lines.append(
        "ticks/s = ticks / time spent in batches; input/s and processed/s are Spark's own "
        "per-batch rates (rows, so N window sizes count a tick N times), averaged."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from stack.settings import default_cache_dir

    parser = EnvArgumentParser(prog="python -m processor.bench", description=__doc__)
    parser.add_env_argument(
        "--bootstrap-servers",
        env="KAFKA_BOOTSTRAP_SERVERS",
        default=None,
        help="Kafka to use (default: start a private ZooKeeper and Kafka)",
    )
    parser.add_argument("--symbols", type=positive_int, default=500, help="distinct symbols")
    parser.add_argument(
        "--backlog-ticks",
        type=positive_int,
        default=200_000,
        help="ticks preloaded before the job starts",
    )
    parser.add_argument(
        "--live-rate", type=positive_int, default=3_000, help="ticks/s sent during the live phase"
    )
    parser.add_argument(
        "--live-seconds", type=positive_int, default=30, help="length of the live phase"
    )
    parser.add_env_argument(
        "--windows", env="WINDOWS", type=window_list, default="1m", help="window sizes"
    )
    parser.add_argument(
        "--max-offsets-per-trigger",
        type=positive_int,
        default=50_000,
        help="cap on ticks per micro-batch",
    )
    parser.add_argument(
        "--partitions", type=positive_int, default=2, help="partitions of the bench's ticks topic"
    )
    parser.add_env_argument(
        "--spark-master", env="SPARK_MASTER", default="local[*]", help="Spark master"
    )
    parser.add_env_argument("--cache-dir", env="STACK_CACHE_DIR", type=Path,
                            default=default_cache_dir(), help="jar cache")  # fmt: skip
    args = parser.parse_args(argv)
    configure_logging("INFO")
    bench = BenchSettings(
        bootstrap_servers=args.bootstrap_servers,
        symbols=args.symbols,
        backlog_ticks=args.backlog_ticks,
        live_rate=args.live_rate,
        live_seconds=args.live_seconds,
        windows_ms=args.windows,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        partitions=args.partitions,
        spark_master=args.spark_master,
        cache_dir=args.cache_dir.resolve(),
    )
    stack = None
    bootstrap = bench.bootstrap_servers
    if bootstrap is None:
        from stack import NativeStack, StackSettings

        stack_settings = StackSettings(
            run_dir=Path(tempfile.mkdtemp(prefix="processor-bench-stack-")),
            cache_dir=bench.cache_dir,
            zookeeper_port=_free_port(),
            kafka_port=_free_port(),
        )
        stack = NativeStack(stack_settings, tie_to_parent=True)
        stack.up(["zookeeper", "kafka"])
        bootstrap = stack_settings.kafka_bootstrap
        bench = replace(bench, bootstrap_servers=bootstrap)
    try:
        figures = run(bench, bootstrap)
    finally:
        if stack is not None:
            stack.down(["zookeeper", "kafka"])
    print(table(figures, bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
