"""`python -m bench.processor` (make bench-processor): sustained ticks/s through the processor.

Two phases on one Spark session, 500 symbols by default, windows 10s,1m,5m at once:
- backlog: ticks preloaded into Kafka, then the job drains them as fast as it can (capacity);
- live: a producer thread sends ticks stamped with the wall clock at a fixed rate while the job
  runs: input rate beside processed rate, and how long after a window closes (its end, on the
  wall clock) its final aggregate is on the aggregates topic (the Kafka record's timestamp).
Figures come from the query's own progress reports, with where a batch's time goes (Spark's
durationMs). Without KAFKA_BOOTSTRAP_SERVERS it starts its own ZooKeeper and Kafka on free ports
in a temporary directory. A benchmark sits above the stack: it may start services (stack/) and
resolve the connector jars, which the processor itself may not.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import cpu_model, cpu_seconds
from bench.results import RESULTS_DIR, publish, stamp
from common.contract import Aggregate, Tick, now_ms
from common.logs import configure_logging
from common.polling import poll_paced
from common.settings import (
    LOG_LEVEL,
    EnvArgumentParser,
    add_options,
    option,
    options_of,
    parse_settings,
    positive_int,
    servers,
    window_list,
)
from common.topics import ensure_topics
from processor import queries
from processor.progress import ProgressTracker
from processor.session import build_session
from processor.settings import ProcessorSettings
from stack import artifacts
from stack.endpoints import services
from stack.services import KAFKA, ZOOKEEPER

logger = logging.getLogger("bench.processor")


def _processor_option(name: str):
    """One of the processor's own options (same flag, env twin, default and check): the bench
    runs the job with the settings it would run with."""
    return dict(options_of(ProcessorSettings))[name].field()


@dataclass(frozen=True)
class BenchSettings:
    bootstrap_servers: str | None = option(
        "--bootstrap-servers",
        "KAFKA_BOOTSTRAP_SERVERS",
        None,
        "Kafka to use (default: start a private ZooKeeper and Kafka)",
        servers,
    )
    symbols: int = option("--symbols", "BENCH_SYMBOLS", "500", "distinct symbols", positive_int)
    backlog_ticks: int = option(
        "--backlog-ticks",
        "BENCH_BACKLOG_TICKS",
        "1000000",
        "ticks preloaded before the job starts",
        positive_int,
    )
    live_rate: int = option(
        "--live-rate", "BENCH_LIVE_RATE", "5000", "ticks/s sent during the live phase", positive_int
    )
    live_seconds: int = option(
        "--live-seconds", "BENCH_LIVE_SECONDS", "60", "length of the live phase", positive_int
    )
    partitions: int = option(
        "--partitions",
        "BENCH_PARTITIONS",
        "2",
        "partitions of the bench's ticks topic",
        positive_int,
    )
    windows_ms: tuple[int, ...] = option(
        "--windows", "WINDOWS", "10s,1m,5m", "tumbling window sizes, comma separated", window_list
    )
    max_offsets_per_trigger: int | None = _processor_option("max_offsets_per_trigger")
    trigger_interval_ms: int = _processor_option("trigger_interval_ms")
    shuffle_partitions: int = _processor_option("shuffle_partitions")
    spark_master: str = _processor_option("spark_master")
    results_dir: Path = RESULTS_DIR.field()
    log_level: str = LOG_LEVEL.field()


@dataclass
class PhaseFigures:
    phase: str
    ticks: int
    ticks_per_s: float
    input_per_s: float
    processed_per_s: float
    p50_ms: float
    p95_ms: float
    batches: int
    # Median share of a batch's time per step of Spark's durationMs (addBatch = the plan).
    steps: dict[str, float]
    # Ticks per CPU-second of the Spark JVM and its Python workers (backlog only): the cost of a
    # tick, whatever else shares the cores. Two idle cores could do at most twice this.
    ticks_per_cpu_s: float = float("nan")
    # Cores the Spark JVM and its Python workers kept busy over the phase (CPU time / wall time).
    cores: float = float("nan")


def _symbols(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


def _ticks(symbols: list[str], count: int, rng: random.Random, ts_of) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(count):
        tick = Tick(rng.choice(symbols), round(rng.uniform(10, 500), 2), rng.randrange(1, 1000),
                    ts_of(i), "bench", 0)  # fmt: skip
        out.append((tick.key, tick.to_json()))
    return out


def _producer(bootstrap: str):
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024
    )


def _send(producer, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()


class LiveFeed(threading.Thread):
    """Sends `rate` ticks per second, stamped with the wall clock, in 50 ms slices until stopped."""

    def __init__(self, bootstrap: str, topic: str, symbols: list[str], rate: int):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.symbols, self.rate = bootstrap, topic, symbols, rate
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
                    now = now_ms()
                    for key, value in _ticks(self.symbols, due, rng, lambda _, t=now: t):
                        producer.send(self.topic, key=key, value=value)
                    self.sent += due
                self.stop.wait(0.05)
        finally:
            producer.flush()
            producer.close()


def _steps(reports: list[dict]) -> dict[str, float]:
    names = sorted({k for r in reports for k in r["durationMs"] if k != "triggerExecution"})
    return {
        n: statistics.median(r["durationMs"].get(n, 0) / max(1, r["durationMs"]["triggerExecution"])
                             for r in reports)
        for n in names
    }  # fmt: skip


def _figures(phase: str, reports: list[dict], ticks: int) -> PhaseFigures:
    durations = sorted(r["durationMs"]["triggerExecution"] for r in reports)
    busy_s = sum(durations) / 1000 or float("nan")
    p95_index = max(0, round(0.95 * len(durations)) - 1)
    return PhaseFigures(
        phase=phase,
        ticks=ticks,
        ticks_per_s=ticks / busy_s,
        input_per_s=statistics.fmean(r.get("inputRowsPerSecond") or 0.0 for r in reports),
        processed_per_s=statistics.fmean(r.get("processedRowsPerSecond") or 0.0 for r in reports),
        p50_ms=statistics.median(durations),
        p95_ms=durations[p95_index],
        batches=len(reports),
        steps=_steps(reports),
    )


def _with_data(reports: list[dict]) -> list[dict]:
    return [r for r in reports if r.get("numInputRows", 0) > 0]


def _source_rows(report: dict) -> int:
    """Offsets a batch read (each Kafka record once, whatever the plan does with it)."""
    total = 0
    for source in report.get("sources", []):
        start, end = source.get("startOffset") or {}, source.get("endOffset") or {}
        for topic, partitions in end.items():
            for partition, offset in partitions.items():
                total += offset - (start.get(topic, {}).get(partition, 0) if start else 0)
    return total


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def close_latencies(bootstrap: str, topic: str, since_ms: int, until_ms: int) -> dict[int, list]:
    """Per window size: ms from a window's end to its last emission on the aggregates topic, for
    the windows that ended while the live feed ran."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    last: dict[tuple, tuple[int, int]] = {}
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline:
            for batch in poll_paced(consumer, 500).values():
                for record in batch:
                    agg = Aggregate.from_json(record.value)
                    if since_ms < agg.window_end <= until_ms:
                        last[agg.identity] = (agg.window_end, record.timestamp)
    finally:
        consumer.close()
    out: dict[int, list] = {}
    for (_, window_ms, _), (window_end, written) in last.items():
        out.setdefault(window_ms, []).append(written - window_end)
    return out


def _job_settings(bench: BenchSettings, bootstrap: str, jars: list[Path]) -> ProcessorSettings:
    """The processor's settings for this run: topics and a checkpoint of its own."""
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="processor-bench-"))
    return ProcessorSettings(
        bootstrap_servers=bootstrap,
        ticks_topic=f"bench-ticks-{run_id}",
        aggregates_topic=f"bench-aggregates-{run_id}",
        dead_letter_topic=f"bench-dead-letters-{run_id}",
        spark_master=bench.spark_master,
        windows_ms=bench.windows_ms,
        checkpoint_dir=workdir / "checkpoints",
        trigger_interval_ms=bench.trigger_interval_ms,
        max_offsets_per_trigger=bench.max_offsets_per_trigger,
        shuffle_partitions=bench.shuffle_partitions,
        spark_jars=tuple(jars),
    )


class _RunningQuery:
    """The job's query with its progress reports, and the CPU of the JVM that runs it (with its
    Python workers)."""

    def __init__(self, settings: ProcessorSettings, jars: list[Path]):
        self.spark = build_session(
            settings.spark_master, jars, shuffle_partitions=settings.shuffle_partitions
        )
        self.spark.sparkContext.setLogLevel("ERROR")
        self._jvm = self.spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        self._tracker = ProgressTracker()
        self.reports: list[dict] = []
        # From before the query starts: its first batch (code generation) is part of the backlog.
        self.started = self.mark()
        self.query = queries.start(
            self.spark, settings, queries.Trigger(settings.trigger_interval_ms)
        )

    def mark(self) -> tuple[float, float]:
        """The JVM's CPU-seconds and the monotonic clock, now: where a span starts."""
        return cpu_seconds(self._jvm), time.monotonic()

    def span_since(self, mark: tuple[float, float]) -> _Span:
        return _Span(cpu_seconds(self._jvm) - mark[0], time.monotonic() - mark[1])

    def collect(self) -> None:
        self.reports.extend(self._tracker.poll([self.query]))
        if not self.query.isActive:
            raise RuntimeError(f"the query stopped: {self.query.exception()}")

    def wait_for_offsets(self, count: int, deadline_s: float | None = None) -> None:
        """Until the query has read `count` ticks (or the deadline passes)."""
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        while sum(_source_rows(r) for r in self.reports) < count:
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(0.5)
            self.collect()

    def stop(self) -> None:
        if self.query.isActive:
            self.query.stop()
        self.spark.stop()


@dataclass(frozen=True)
class _Span:
    """CPU-seconds of the Spark JVM (with its Python workers) and wall seconds of a phase."""

    cpu_s: float
    wall_s: float


@dataclass(frozen=True)
class _Live:
    sent: int
    from_ms: int
    until_ms: int
    span: _Span


def _live_phase(bench: BenchSettings, job: _RunningQuery, settings: ProcessorSettings,
                symbols: list[str]) -> _Live:  # fmt: skip
    """Ticks at the live rate for the live seconds."""
    feed = LiveFeed(settings.bootstrap_servers, settings.ticks_topic, symbols, bench.live_rate)
    live_from = now_ms()
    mark = job.mark()
    feed.start()
    time.sleep(bench.live_seconds)  # the live phase itself
    feed.stop.set()
    feed.join()
    return _Live(feed.sent, live_from, now_ms(), job.span_since(mark))


def run(bench: BenchSettings, bootstrap: str, jars: list[Path]) -> tuple[list, dict]:
    settings = _job_settings(bench, bootstrap, jars)
    ensure_topics(
        bootstrap,
        [settings.ticks_topic, settings.aggregates_topic, settings.dead_letter_topic],
        partitions=bench.partitions,
    )
    symbols = _symbols(bench.symbols)
    rng = random.Random(1)
    producer = _producer(bootstrap)
    began = time.monotonic()
    # Event time moves forward ~1 ms per tick, so windows close as they would in a live feed.
    start_ms = now_ms() - 3_600_000
    _send(producer, settings.ticks_topic,
          _ticks(symbols, bench.backlog_ticks, rng, lambda i: start_ms + i))  # fmt: skip
    producer.close()
    logger.info("preloaded ticks=%d in %.1fs", bench.backlog_ticks, time.monotonic() - began)

    job = _RunningQuery(settings, jars)
    try:
        job.wait_for_offsets(bench.backlog_ticks)
        backlog = _with_data(job.reports)[1:]  # the first batch: warm-up (code generation)
        backlog_span = job.span_since(job.started)
        first_live_report = len(job.reports)
        fed = _live_phase(bench, job, settings, symbols)
        job.wait_for_offsets(bench.backlog_ticks + fed.sent, deadline_s=180)
        # Let the windows that closed during the feed be emitted (the watermark moves on only
        # with new ticks, so a final trickle closes them).
        tail = _ticks(symbols, 10, rng, lambda _: now_ms() + max(bench.windows_ms))
        _send(_producer(bootstrap), settings.ticks_topic, tail)
        time.sleep(3 * bench.trigger_interval_ms / 1000 + 2)  # a few batches for the trickle
        job.collect()
        live = _with_data(job.reports[first_live_report:])
    finally:
        job.stop()
    figures = _phase_figures(bench, backlog, live, backlog_span, fed.span)
    latency = close_latencies(bootstrap, settings.aggregates_topic, fed.from_ms, fed.until_ms)
    return figures, latency


def _phase_figures(bench: BenchSettings, backlog: list[dict], live: list[dict],
                   backlog_span: _Span, live_span: _Span) -> list[PhaseFigures]:  # fmt: skip
    figures = []
    if backlog:
        figures.append(_figures("backlog", backlog, sum(_source_rows(r) for r in backlog)))
        # Every backlog batch, warm-up included, against the Spark JVM's and its Python
        # workers' CPU time over the same span.
        figures[-1].ticks_per_cpu_s = bench.backlog_ticks / backlog_span.cpu_s
        figures[-1].cores = backlog_span.cpu_s / backlog_span.wall_s
    if live:
        live_ticks = sum(_source_rows(r) for r in live)
        figures.append(_figures(f"live {bench.live_rate}/s", live, live_ticks))
        figures[-1].cores = live_span.cpu_s / live_span.wall_s
    return figures


def table(figures: list[PhaseFigures], latency: dict[int, list], bench: BenchSettings) -> str:
    windows = ",".join(f"{w // 1000}s" for w in bench.windows_ms)
    lines = [
        f"processor benchmark: {bench.symbols} symbols, windows {windows} (one query), "
        f"master {bench.spark_master}, {bench.partitions} Kafka partitions, "
        f"{bench.shuffle_partitions} shuffle partitions, trigger {bench.trigger_interval_ms} ms, "
        f"maxOffsetsPerTrigger {bench.max_offsets_per_trigger}; {cpu_model()}",
        f"{'phase':<14} {'ticks':>8} {'ticks/s':>9} {'input/s':>9} {'processed/s':>11} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'batches':>7} {'ticks/cpu-s':>11} {'cores':>5}",
    ]
    for f in figures:
        lines.append(
            f"{f.phase:<14} {f.ticks:>8} {f.ticks_per_s:>9.0f} {f.input_per_s:>9.0f} "
            f"{f.processed_per_s:>11.0f} {f.p50_ms:>7.0f} {f.p95_ms:>7.0f} {f.batches:>7} "
            f"{f.ticks_per_cpu_s:>11.0f} {f.cores:>5.2f}"
        )
    lines.append(
        "ticks/s = ticks / time spent in batches; input/s and processed/s are Spark's own "
        "per-batch rates, averaged; ticks/cpu-s = backlog ticks / CPU seconds of the Spark JVM "
        "and its Python workers while draining it (Kafka and the feed not included); cores = "
        "their CPU time / wall time over the phase."
    )
    for f in figures:
        steps = ", ".join(f"{k} {v:.0%}" for k, v in sorted(f.steps.items(), key=lambda x: -x[1])
                          if v >= 0.01)  # fmt: skip
        lines.append(f"where a {f.phase} batch's time goes (median share): {steps}")
    for window_ms, values in sorted(latency.items()):
        lines.append(
            f"window close -> aggregate on Kafka, {window_ms // 1000}s windows "
            f"({len(values)} windows): p50 {_percentile(values, 0.5):,.0f} ms, "
            f"p95 {_percentile(values, 0.95):,.0f} ms, p99 {_percentile(values, 0.99):,.0f} ms"
        )
    return "\n".join(lines)


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m bench.processor", description=__doc__, environ=environ
    )
    add_options(parser, BenchSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    bench, _ = parse_settings(BenchSettings, build_parser(), argv)
    configure_logging(bench.log_level)
    environ = {"KAFKA_BOOTSTRAP_SERVERS": bench.bootstrap_servers or ""}
    with (
        tempfile.TemporaryDirectory(prefix="processor-bench-stack-") as tmp,
        services(environ, Path(tmp), needs=(ZOOKEEPER, KAFKA)) as found,
    ):
        jars = artifacts.spark_kafka_jars(found.cache_dir)
        figures, latency = run(bench, found.bootstrap_servers, jars)
    publish(table(figures, latency, bench), bench.results_dir, f"processor-{stamp()}")
    print(json.dumps({"figures": [f.__dict__ for f in figures]}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
