"""Helpers for the processor's tests: topics and settings per test, Kafka in and out, and running
the real queries in the shared Spark session one micro-batch run at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from common.contract import Aggregate, Tick
from common.polling import poll_paced, wait_until
from common.reference import Identity, aggregate_batches, latest, window_start
from processor import queries
from processor.progress import ProgressTracker
from processor.settings import ProcessorSettings

# A fixed event-time origin (2023-11-14T22:10:00Z): in the past, so no tick is in the contract's
# future, and a multiple of every window size used here (10s, 1m, 5m).
T0 = 1_699_999_800_000


Record = tuple[bytes | None, bytes | None]


def keyed(ticks: Iterable[Tick]) -> list[Record]:
    """Ticks as the producer sends them: the key is the symbol."""
    return [(t.key, t.to_json()) for t in ticks]


def produce(bootstrap: str, topic: str, records: Iterable[Record]) -> list[int]:
    """Send (key, value) records and wait for each; returns their offsets (one-partition topics).
    Kafka refuses a record with neither key nor value."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in records]
        producer.flush()
        return [f.get(timeout=30).offset for f in futures]
    finally:
        producer.close()


def read_all(bootstrap: str, topic: str) -> list:
    """Every record now in the topic, in order (reads up to the end offsets taken at the start)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in poll_paced(consumer, 500).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def output_aggregates(
    bootstrap: str, topic: str
) -> tuple[list[Aggregate], dict[Identity, Aggregate]]:
    """All aggregates emitted (each checked against the contract and its key) and the last value
    per identity, as an upserting store would hold them."""
    emitted = []
    for record in read_all(bootstrap, topic):
        # The contract's own reading, key included (the wall clock as now: T0 is in the past).
        agg = Aggregate.from_record(record.key, record.value)
        emitted.append(agg)
    return emitted, latest(emitted)


def tick(symbol: str, offset_ms: int, price: float, volume: int = 1, seq: int = 0) -> Tick:
    return Tick(symbol, price, volume, T0 + offset_ms, "test", seq)


@pytest.fixture
def processor_settings(services, make_topic, tmp_path) -> Callable[..., ProcessorSettings]:
    """Settings for a run on this test's own topics and checkpoint directory."""

    def make(**overrides) -> ProcessorSettings:
        base = ProcessorSettings(
            bootstrap_servers=services.bootstrap_servers,
            ticks_topic=make_topic(suffix="_ticks"),
            aggregates_topic=make_topic(suffix="_aggs"),
            dead_letter_topic=make_topic(suffix="_dead"),
            checkpoint_dir=tmp_path / f"checkpoints-{time.monotonic_ns()}",
            trigger_interval_ms=500,
            max_offsets_per_trigger=None,
            shuffle_partitions=2,
        )
        return replace(base, **overrides)

    return make


class BatchRunner:
    """Runs the processor's real query with an available-now trigger: each call processes
    exactly what is in the topic, then stops. Micro-batch boundaries are then the calls, which is
    what makes the watermark (and so the expected output) deterministic."""

    def __init__(self, spark, settings: ProcessorSettings):
        self.spark = spark
        self.settings = settings
        self.tracker = ProgressTracker()

    def run(self, records: Sequence[Record]) -> list[int]:
        offsets = produce(self.settings.bootstrap_servers, self.settings.ticks_topic, records)
        query = queries.start(self.spark, self.settings, queries.Trigger(None))
        try:
            assert query.awaitTermination(300), "the query did not finish"
            assert query.exception() is None, query.exception()
        finally:
            query.stop()
        self.tracker.poll([query])
        return offsets

    @property
    def totals(self):
        return self.tracker.totals[queries.QUERY]


@pytest.fixture
def batch_runner(spark) -> Callable[[ProcessorSettings], BatchRunner]:
    return lambda settings: BatchRunner(spark, settings)


def checkpoint_files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


@pytest.fixture(autouse=True)
def _quiet_spark(spark):
    # Spark warns at length about every restored state file; the tests' own output matters more.
    spark.sparkContext.setLogLevel("ERROR")


def late_rows(
    batches: Sequence[Sequence[Tick]], windows_ms: Sequence[int], watermark_ms: int
) -> int:
    """What the query reports as late (numRowsDroppedByWatermark over its operators), from the
    reference's late (tick, window) pairs of each batch: a tick late for every window size is
    dropped once by the deduplication; the others by the aggregation, which counts after its
    partial aggregation, so once per late (symbol, window size, window) in a batch (one-partition
    topics)."""
    total, seen = 0, 0
    for i in range(len(batches)):
        dropped = aggregate_batches(batches[: i + 1], windows_ms, watermark_ms).dropped[seen:]
        seen += len(dropped)
        sizes: dict[Tick, set[int]] = {}
        for t, w in dropped:
            sizes.setdefault(t, set()).add(w)
        everywhere = {t for t, ws in sizes.items() if len(ws) == len(windows_ms)}
        total += len(everywhere)
        total += len(
            {(t.symbol, w, window_start(t.ts, w)) for t, w in dropped if t not in everywhere}
        )
    return total


@pytest.fixture
def source_server():
    """A local HTTP server in the formats of the polled sources (the producer's stand-in)."""
    from tests.unit.producer.servers import SourceServer

    server = SourceServer().start()
    yield server
    server.stop()


def run_until_dead_lettered(
    query, settings: ProcessorSettings, expected: dict, letters: int, timeout_s: float = 600
) -> tuple[list, dict, ProgressTracker]:
    """Let a running query work until the dead-letter topic holds `letters` records and the
    aggregates equal `expected`, failing at once if the query stops; the dead letters, the
    final aggregates and the query's progress totals."""
    from common.reference import differences

    tracker = ProgressTracker()
    found: list = []
    final: dict = {}

    def done() -> bool:
        tracker.poll([query])
        found[:] = read_all(settings.bootstrap_servers, settings.dead_letter_topic)
        final.clear()
        final.update(output_aggregates(settings.bootstrap_servers, settings.aggregates_topic)[1])
        return len(found) >= letters and not differences(expected, final)

    def running() -> None:
        assert query.isActive, f"the query stopped: {query.exception()}"

    wait_until(done, timeout_s, f"{letters} dead letters and the expected aggregates", every_s=1.0,
               check=running, describe=lambda: f"{len(found)} dead letters; "
               f"{differences(expected, final)[:5]}")  # fmt: skip
    tracker.poll([query])
    assert query.isActive and query.exception() is None
    return found, final, tracker


def start_job(settings: ProcessorSettings, jars, log: Path, **env: str):
    """`python -m processor` on these settings in a process group of its own (a kill takes
    the JVM and the Python workers with it), logging to `log`; `env` adds or overrides."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    full = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TICKS_TOPIC": settings.ticks_topic,
        "AGGREGATES_TOPIC": settings.aggregates_topic,
        "DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        "CHECKPOINT_DIR": str(settings.checkpoint_dir),
        "TRIGGER_INTERVAL": "300ms",
        "SHUFFLE_PARTITIONS": "2",
        "SPARK_MASTER": "local[2]",
        "SPARK_JARS": ",".join(str(j) for j in jars),
        "LOG_LEVEL": "INFO",
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "processor"],
            cwd=repo, env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
