"""`python -m stack.pipeline_bench`: the whole pipeline at fixed offered rates, per-stage figures.

One pipeline (storage, processor, producer as subprocesses, exactly as `make local` runs them) on
topics, a keyspace and a checkpoint of its own. For each offered rate, ascending, the simulated
producer publishes `rate` ticks/s over the symbols for the set duration; then the bench waits for
the processor and storage to drain before the next rate. Measured:

- throughput per stage while the load is on: ticks appended to the ticks topic (producer), ticks
  read by the aggregates query's committed batches (processor, from its checkpoint's offset log),
  ticks committed by the storage consumer group after writing (storage); each stage's backlog
  when the producer finishes, and how long it took to drain;
- latency from timestamps stored with the data, not from polling: tick event time -> raw row
  written (WRITETIME of the tick row, the coordinator's clock, for a sample of symbols), and
  window close -> final aggregate row written (`written_at - window_end`, every symbol).

Without KAFKA_BOOTSTRAP_SERVERS and CASSANDRA_HOSTS it starts its own ZooKeeper, Kafka and
Cassandra on free ports in a temporary directory. Everything shares this machine's cores: the
figures are what the machine does with every service on it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from common.contract import now_ms
from common.logs import configure_logging
from common.settings import (
    EnvArgumentParser,
    duration_ms,
    format_duration,
    host_list,
    positive_int,
)
from common.topics import ensure_topics
from processor.settings import window_list

logger = logging.getLogger("stack.pipeline_bench")

REPO = Path(__file__).resolve().parent.parent
DAY_MS = 86_400_000
# The producer keeps up when it publishes at least this share of the offered rate.
KEPT_UP = 0.95
# A reader keeps up when the backlog it has when the load stops is gone within this share of the
# load's duration (at least MIN_DRAIN_S: the processor works in micro-batches of a few seconds,
# so one batch in flight is normal; a backlog that keeps growing is not).
DRAIN_SHARE = 0.1
MIN_DRAIN_S = 5.0
# The first seconds of a phase are left out of the rates: the producer's start-up (imports,
# connecting, creating its client) is not its throughput.
WARM_UP_S = 5.0
_STOP_GRACE_S = 60.0


@dataclass(frozen=True)
class BenchSettings:
    rates: tuple[int, ...] = (1000, 5000, 20000)
    duration_s: float = 45.0
    symbols: int = 500
    windows_ms: tuple[int, ...] = (10_000,)
    drain_timeout_s: float = 90.0
    latency_symbols: int = 25
    results_dir: Path = Path("bench-results")
    kafka_bootstrap: str | None = None
    cassandra_hosts: tuple[str, ...] | None = None
    cassandra_port: int = 9042
    spark_master: str = "local[2]"
    log_level: str = "INFO"

    @property
    def attached(self) -> bool:
        return self.kafka_bootstrap is not None and self.cassandra_hosts is not None


def _rates(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(sorted({positive_int(p.strip()) for p in text.split(",") if p.strip()}))
    except ValueError:
        rates = ()
    if not rates:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of rates: use ticks/s above 0, e.g. 1000,5000,20000"
        )
    return rates


def parse_settings(argv: list[str] | None = None) -> BenchSettings:
    p = EnvArgumentParser(prog="python -m stack.pipeline_bench", description=__doc__.split("\n")[0])
    add = p.add_env_argument
    d = BenchSettings()
    add(
        "--rates",
        env="BENCH_RATES",
        type=_rates,
        default="1000,5000,20000",
        help="offered rates in ticks/s over all symbols, run in ascending order",
    )
    add(
        "--duration",
        env="BENCH_DURATION",
        type=duration_ms,
        default="45s",
        help="how long each rate is offered",
    )
    add(
        "--symbols",
        env="BENCH_SYMBOLS",
        type=positive_int,
        default=d.symbols,
        help="simulated symbols the ticks are spread over",
    )
    add(
        "--windows",
        env="BENCH_WINDOWS",
        type=window_list,
        default="10s",
        help="the processor's window sizes (short ones close often: more latency samples)",
    )
    add(
        "--drain-timeout",
        env="BENCH_DRAIN_TIMEOUT",
        type=duration_ms,
        default="90s",
        help="how long to wait after a rate for every stage to catch up",
    )
    add(
        "--latency-symbols",
        env="BENCH_LATENCY_SYMBOLS",
        type=positive_int,
        default=d.latency_symbols,
        help="symbols whose every tick row is read back for tick->row latency",
    )
    add(
        "--results-dir",
        env="BENCH_RESULTS_DIR",
        type=Path,
        default=d.results_dir,
        help="where the results table (and the stages' logs) are written",
    )
    add(
        "--bootstrap-servers",
        env="KAFKA_BOOTSTRAP_SERVERS",
        default=None,
        help="use this Kafka (with CASSANDRA_HOSTS); unset: start a stack of its own",
    )
    add(
        "--cassandra-hosts",
        env="CASSANDRA_HOSTS",
        type=host_list,
        default=None,
        help="use this Cassandra (with KAFKA_BOOTSTRAP_SERVERS)",
    )
    add(
        "--cassandra-port",
        env="CASSANDRA_PORT",
        type=positive_int,
        default=9042,
        help="Cassandra native-protocol port",
    )
    add("--spark-master", env="SPARK_MASTER", default=d.spark_master, help="the processor's master")
    add(
        "--log-level",
        env="LOG_LEVEL",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level",
    )
    args = p.parse_args(argv)
    if (args.bootstrap_servers is None) != (args.cassandra_hosts is None):
        p.error(
            "set both KAFKA_BOOTSTRAP_SERVERS and CASSANDRA_HOSTS to use running services, "
            "or neither to let the bench start its own"
        )
    if args.latency_symbols > args.symbols:
        p.error(f"--latency-symbols {args.latency_symbols} is more than --symbols {args.symbols}")
    return BenchSettings(
        rates=args.rates,
        duration_s=args.duration / 1000,
        symbols=args.symbols,
        windows_ms=args.windows,
        drain_timeout_s=args.drain_timeout / 1000,
        latency_symbols=args.latency_symbols,
        results_dir=args.results_dir,
        kafka_bootstrap=args.bootstrap_servers,
        cassandra_hosts=tuple(args.cassandra_hosts) if args.cassandra_hosts else None,
        cassandra_port=args.cassandra_port,
        spark_master=args.spark_master,
        log_level=args.log_level,
    )  # fmt: skip


# --- the pipeline under test -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where this run's data goes: names of its own, so it never mixes with other data."""

    kafka_bootstrap: str
    cassandra_hosts: tuple[str, ...]
    cassandra_port: int
    run_id: str
    checkpoint_dir: Path
    logs_dir: Path

    @property
    def ticks_topic(self) -> str:
        return f"bench-{self.run_id}-ticks"

    @property
    def aggregates_topic(self) -> str:
        return f"bench-{self.run_id}-aggregates"

    @property
    def dead_letter_topic(self) -> str:
        return f"bench-{self.run_id}-dead-letters"

    @property
    def keyspace(self) -> str:
        return f"bench_{self.run_id}"

    @property
    def group(self) -> str:
        return f"bench-storage-{self.run_id}"


class Stages:
    """The three stages as child processes, each in its own process group, logging to a file."""

    def __init__(self, target: Target, bench: BenchSettings, symbols: list[str]):
        self.target = target
        self.bench = bench
        self.symbols = symbols
        self.procs: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        t = self.target
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "KAFKA_BOOTSTRAP_SERVERS": t.kafka_bootstrap,
            "TICKS_TOPIC": t.ticks_topic,
            "AGGREGATES_TOPIC": t.aggregates_topic,
            "DEAD_LETTER_TOPIC": t.dead_letter_topic,
            "CASSANDRA_HOSTS": ",".join(t.cassandra_hosts),
            "CASSANDRA_PORT": str(t.cassandra_port),
            "CASSANDRA_KEYSPACE": t.keyspace,
            "CONSUMER_GROUP": t.group,
            "CHECKPOINT_DIR": str(t.checkpoint_dir),
            "SPARK_MASTER": self.bench.spark_master,
            "WINDOWS": ",".join(f"{w}ms" for w in self.bench.windows_ms),
            "LOG_LEVEL": "INFO",
        }

    def start(self, stage: str, log_name: str | None = None, **extra: str) -> None:
        log = self.target.logs_dir / f"{log_name or stage}.log"
        with log.open("ab") as out:
            self.procs[stage] = subprocess.Popen(
                [sys.executable, "-m", stage],
                cwd=REPO, env={**self.env(), **extra}, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def start_producer(self, rate: int, count: int, log_name: str | None = None) -> None:
        self.start(
            "producer",
            log_name=log_name or f"producer-{rate}",
            PRICE_SOURCE="simulated",
            SYMBOLS=",".join(self.symbols),
            SIM_RATE=str(rate),
            MAX_TICKS=str(count),
            STATS_INTERVAL="10s",
        )

    def exited(self, stage: str) -> int | None:
        return self.procs[stage].poll()

    def check_readers(self) -> None:
        for stage in ("storage", "processor"):
            rc = self.procs[stage].poll()
            if rc is not None:
                log = self.target.logs_dir / f"{stage}.log"
                raise RuntimeError(f"{stage} exited with {rc}; see {log}")

    def stop_all(self) -> None:
        for stage in ("producer", "processor", "storage"):
            proc = self.procs.get(stage)
            if proc is None or proc.poll() is not None:
                continue
            # The stage itself, not its group: Spark's JVM must outlive the Python driver's
            # clean stop of its queries (it exits by itself when the driver has gone).
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0fs; killing it", stage, _STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


# --- positions: how far each stage has got --------------------------------------------------


class Positions:
    """Ticks produced, processed and stored so far, read from Kafka and the checkpoint."""

    def __init__(self, target: Target):
        from kafka import KafkaAdminClient, KafkaConsumer

        self.target = target
        self._consumer = KafkaConsumer(
            bootstrap_servers=target.kafka_bootstrap, enable_auto_commit=False
        )
        self._admin = KafkaAdminClient(bootstrap_servers=target.kafka_bootstrap)
        self._partitions: list = []

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def _tps(self) -> list:
        from kafka import TopicPartition

        if not self._partitions:
            found = self._consumer.partitions_for_topic(self.target.ticks_topic) or ()
            self._partitions = [TopicPartition(self.target.ticks_topic, p) for p in found]
        return self._partitions

    def produced(self) -> int:
        return sum(self._consumer.end_offsets(self._tps()).values())

    def stored(self) -> int:
        offsets = self._admin.list_group_offsets({self.target.group: None})
        return sum(
            meta.offset
            for tp, meta in offsets.get(self.target.group, {}).items()
            if tp.topic == self.target.ticks_topic and meta.offset > 0
        )

    def processed(self) -> int:
        """End offsets of the aggregates query's last committed micro-batch.

        Spark logs a batch's offsets before running it (offsets/<id>) and marks it done after
        its output is written (commits/<id>): the newest batch with both is how far the
        processor has really got.
        """
        query = self.target.checkpoint_dir / "aggregates"
        try:
            done = [int(p.name) for p in (query / "commits").iterdir() if p.name.isdigit()]
        except FileNotFoundError:
            return 0
        if not done:
            return 0
        lines = (query / "offsets" / str(max(done))).read_text().splitlines()
        offsets = json.loads(lines[-1]).get(self.target.ticks_topic, {})
        return sum(int(v) for v in offsets.values())


@dataclass
class Sample:
    t: float
    produced: int
    processed: int
    stored: int


# --- one offered rate ---------------------------------------------------------------------------


@dataclass
class Percentiles:
    count: int = 0
    missing: int = 0
    p50: float = math.nan
    p95: float = math.nan
    p99: float = math.nan
    max: float = math.nan

    @classmethod
    def of(cls, values_ms: list[float], missing: int = 0) -> Percentiles:
        # Rows never written count as infinitely late: a percentile they reach is "not written".
        values = sorted(values_ms) + [math.inf] * missing
        if not values:
            return cls()

        def pick(q: float) -> float:
            return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]

        return cls(len(values_ms), missing, pick(0.50), pick(0.95), pick(0.99), values[-1])


@dataclass
class PhaseResult:
    rate: int
    ticks: int
    seconds: float = 0.0
    backlog_at_start: int = 0
    produced_per_s: float = 0.0
    processed_per_s: float = 0.0
    stored_per_s: float = 0.0
    processor_lag_end: int = 0
    storage_lag_end: int = 0
    processor_drain_s: float | None = None
    storage_drain_s: float | None = None
    tick_to_row: Percentiles = field(default_factory=Percentiles)
    window_to_row: Percentiles = field(default_factory=Percentiles)
    producer_rc: int | None = None

    def kept_up(self) -> dict[str, bool]:
        bound = max(MIN_DRAIN_S, DRAIN_SHARE * self.seconds)

        def drained(seconds: float | None) -> bool:
            return seconds is not None and seconds <= bound

        return {
            "producer": self.produced_per_s >= KEPT_UP * self.rate,
            "processor": drained(self.processor_drain_s),
            "storage": drained(self.storage_drain_s),
        }

    def rates(self) -> dict[str, float]:
        return {"producer": self.produced_per_s, "processor": self.processed_per_s,
                "storage": self.stored_per_s}  # fmt: skip

    def behind(self) -> list[str]:
        """The stages that did not keep up, slowest first."""
        rates = self.rates()
        return sorted((s for s, ok in self.kept_up().items() if not ok), key=rates.__getitem__)

    def limiting_stage(self) -> str | None:
        """The slowest stage among those that did not keep up; None if all did."""
        behind = self.behind()
        return behind[0] if behind else None


class Progress:
    """A one-line progress bar on stderr (a line every few seconds when it is not a terminal)."""

    def __init__(self, total_s: float, label: str):
        self.total_s = total_s
        self.label = label
        self.tty = sys.stderr.isatty()
        self._last_line = 0.0

    def show(self, elapsed_s: float, text: str, force: bool = False) -> None:
        width = 30
        done = min(width, int(width * elapsed_s / self.total_s)) if self.total_s else width
        bar = "#" * done + "-" * (width - done)
        line = f"{self.label} [{bar}] {elapsed_s:5.0f}/{self.total_s:.0f}s {text}"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(120)[:160])
            sys.stderr.flush()
        elif force or time.monotonic() - self._last_line >= 5.0:
            self._last_line = time.monotonic()
            sys.stderr.write(line + "\n")

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _rate_between(samples: list[Sample], attr: str, t0: float, t1: float) -> float:
    """Ticks/s between the first and the last sample in [t0, t1] at which the count moved.

    Measuring between moves, not between fixed times, keeps a stage that advances in steps
    (the processor commits a micro-batch every few seconds) from looking faster or slower
    depending on where its steps fall in the window."""
    inside = [s for s in samples if t0 <= s.t <= t1]
    moves = [
        b for a, b in zip(inside, inside[1:], strict=False) if getattr(b, attr) != getattr(a, attr)
    ]
    if len(moves) < 2 or moves[-1].t <= moves[0].t:
        return 0.0
    return (getattr(moves[-1], attr) - getattr(moves[0], attr)) / (moves[-1].t - moves[0].t)


def run_phase(
    bench: BenchSettings, stages: Stages, positions: Positions, session, rate: int
) -> PhaseResult:
    count = int(rate * bench.duration_s)
    result = PhaseResult(rate=rate, ticks=count)
    base = positions.produced()
    result.backlog_at_start = (base - positions.processed()) + (base - positions.stored())
    first_ms = now_ms()
    began = time.monotonic()
    stages.start_producer(rate, count)
    samples: list[Sample] = []
    progress = Progress(bench.duration_s, f"{rate:>6}/s")

    def sample() -> Sample:
        s = Sample(time.monotonic() - began, positions.produced() - base,
                   positions.processed() - base, positions.stored() - base)  # fmt: skip
        samples.append(s)
        return s

    # The load: until the producer has published its ticks and exited.
    while stages.exited("producer") is None:
        stages.check_readers()
        s = sample()
        progress.show(s.t, f"produced={s.produced} processor_lag={s.produced - s.processed} "
                           f"storage_lag={s.produced - s.stored}")  # fmt: skip
        time.sleep(1.0)
    result.producer_rc = stages.exited("producer")
    end = sample()
    load_end_ms = now_ms()
    result.seconds = end.t
    result.processor_lag_end = end.produced - end.processed
    result.storage_lag_end = end.produced - end.stored
    progress.show(end.t, f"produced={end.produced}; draining", force=True)
    progress.done()

    # The drain: how long each reader needs to catch up once the load stops.
    deadline = time.monotonic() + bench.drain_timeout_s
    while time.monotonic() < deadline:
        stages.check_readers()
        s = sample()
        if result.processor_drain_s is None and s.processed >= end.produced:
            result.processor_drain_s = s.t - end.t
        if result.storage_drain_s is None and s.stored >= end.produced:
            result.storage_drain_s = s.t - end.t
        if result.processor_drain_s is not None and result.storage_drain_s is not None:
            break
        time.sleep(0.5)

    # The load period: after the producer's start-up, up to the last sample taken before its
    # final tick landed, so both ends are inside the load (samples are ~1 s apart; one taken
    # after the end would count idle time as if the stage had been slow).
    t0 = min(WARM_UP_S, end.t / 2)
    t1 = max((s.t for s in samples if s.produced < end.produced), default=end.t)
    if t1 - t0 < 2.0:
        t0, t1 = 0.0, end.t
    result.produced_per_s = _rate_between(samples, "produced", t0, t1)
    result.processed_per_s = _rate_between(samples, "processed", t0, t1)
    result.stored_per_s = _rate_between(samples, "stored", t0, t1)
    last_ms = now_ms()
    result.tick_to_row = tick_latency(bench, session, stages, first_ms, last_ms, count)
    if result.processor_drain_s is not None and result.storage_drain_s is not None:
        result.window_to_row = window_latency(bench, session, stages, first_ms, load_end_ms)
    return result


def _days(first_ms: int, last_ms: int) -> list:
    from cassandra.util import Date

    return [Date(d) for d in range(first_ms // DAY_MS, last_ms // DAY_MS + 1)]


def tick_latency(
    bench: BenchSettings, session, stages: Stages, first_ms: int, last_ms: int, count: int
) -> Percentiles:
    """WRITETIME(price) - ts for every tick of a sample of symbols; unwritten ones count as
    infinitely late (the producer publishes round-robin, so each symbol's share is known)."""
    ks = stages.target.keyspace  # built from a hex run id: [a-z0-9_] only
    select = session.prepare(
        f"SELECT toUnixTimestamp(ts) AS ts_ms, WRITETIME(price) AS written_us "  # noqa: S608
        f"FROM {ks}.ticks WHERE symbol = ? AND day = ? AND ts >= ? AND ts <= ?"
    )
    n = len(stages.symbols)
    step = max(1, n // bench.latency_symbols)
    picked = list(range(0, n, step))[: bench.latency_symbols]
    latencies: list[float] = []
    missing = 0
    for j in picked:
        symbol = stages.symbols[j]
        expected = len(range(j, count, n))
        rows = []
        for day in _days(first_ms, last_ms):
            rows += list(session.execute(select, (symbol, day, first_ms, last_ms)))
        latencies += [r.written_us / 1000 - r.ts_ms for r in rows]
        missing += max(0, expected - len(rows))
    return Percentiles.of(latencies, missing)


def window_latency(
    bench: BenchSettings, session, stages: Stages, first_ms: int, load_end_ms: int
) -> Percentiles:
    """written_at - window_end of every window that opened and closed while the load was on
    (a window still open when the producer stopped never got its closing ticks)."""
    ks = stages.target.keyspace
    select = session.prepare(
        "SELECT window_ms, toUnixTimestamp(window_end) AS end_ms, "  # noqa: S608
        "toUnixTimestamp(written_at) AS written_ms "
        f"FROM {ks}.aggregates WHERE symbol = ? AND window_ms = ? AND day = ? "
        "AND window_start >= ? AND window_start <= ?"
    )
    latencies: list[float] = []
    for window_ms in bench.windows_ms:
        for symbol in stages.symbols:
            for day in _days(first_ms, load_end_ms):
                rows = session.execute(select, (symbol, window_ms, day, first_ms, load_end_ms))
                latencies += [r.written_ms - r.end_ms for r in rows
                              if r.end_ms <= load_end_ms and r.written_ms is not None]  # fmt: skip
    return Percentiles.of(latencies)


# --- the run ------------------------------------------------------------------------------------


@contextlib.contextmanager
def services(bench: BenchSettings, workdir: Path) -> Iterator[tuple[str, tuple[str, ...], int]]:
    """The services to run against: the ones the settings name, or a stack of its own."""
    if bench.attached:
        yield bench.kafka_bootstrap, bench.cassandra_hosts, bench.cassandra_port
        return
    from stack.native import NativeStack
    from stack.settings import StackSettings

    settings = StackSettings.on_free_ports(workdir / "stack")
    stack = NativeStack(settings, tie_to_parent=True)
    logger.info("starting a stack of its own in %s", settings.run_dir)
    stack.up()
    try:
        yield settings.kafka_bootstrap, (settings.host,), settings.cassandra_port
    finally:
        stack.down()


def warm_up(stages: Stages, positions: Positions, bench: BenchSettings) -> None:
    """A few ticks through every stage before anything is measured: Spark's first
    micro-batch starts its Python workers and state stores and takes several times longer than
    the next ones."""
    logger.info("warming up: %d ticks through every stage", 2 * bench.symbols)
    stages.start_producer(bench.symbols, 2 * bench.symbols, log_name="producer-warm-up")
    deadline = time.monotonic() + 180
    while True:
        stages.check_readers()
        produced = positions.produced()
        if (
            stages.exited("producer") is not None
            and positions.processed() >= produced
            and positions.stored() >= produced
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up ticks did not get through within 180 s")
        time.sleep(0.5)


def _wait_for_log(stages: Stages, stage: str, text: str, timeout_s: float) -> None:
    log = stages.target.logs_dir / f"{stage}.log"
    deadline = time.monotonic() + timeout_s
    while text not in (log.read_text(errors="replace") if log.exists() else ""):
        stages.check_readers()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stage} did not log {text!r} within {timeout_s:.0f}s; see {log}")
        time.sleep(0.5)


def run(bench: BenchSettings, stamp: str) -> list[PhaseResult]:
    from storage.cluster import connect

    logs_dir = (bench.results_dir / f"pipeline-{stamp}-logs").resolve()
    logs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        work = Path(tmp)
        with services(bench, work) as (bootstrap, hosts, port):
            target = Target(bootstrap, hosts, port, uuid.uuid4().hex[:10],
                            work / "checkpoints", logs_dir)  # fmt: skip
            ensure_topics(bootstrap, [target.ticks_topic, target.aggregates_topic,
                                      target.dead_letter_topic])  # fmt: skip
            symbols = [f"B{i:04d}" for i in range(bench.symbols)]
            stages = Stages(target, bench, symbols)
            cluster, session = connect(hosts, port)
            positions = Positions(target)
            results: list[PhaseResult] = []
            try:
                stages.start("storage")
                stages.start("processor")
                logger.info("waiting for the processor's queries (a JVM start, ~15 s)")
                _wait_for_log(stages, "processor", "started queries", 180)
                _wait_for_log(stages, "storage", "consuming topics", 120)
                warm_up(stages, positions, bench)
                for rate in bench.rates:
                    logger.info("offering %d ticks/s for %.0fs", rate, bench.duration_s)
                    results.append(run_phase(bench, stages, positions, session, rate))
            finally:
                stages.stop_all()
                positions.close()
                if bench.attached:
                    # Someone else's services: leave nothing of ours behind but the logs.
                    with contextlib.suppress(Exception):
                        session.execute(f"DROP KEYSPACE IF EXISTS {target.keyspace}", timeout=60)
                    _delete_topics(bootstrap, target)
                cluster.shutdown()
    return results


def _delete_topics(bootstrap: str, target: Target) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([target.ticks_topic, target.aggregates_topic, target.dead_letter_topic])
    except KafkaError as e:
        logger.warning("could not delete the bench topics: %s", e)
    finally:
        admin.close()


# --- the report ---------------------------------------------------------------------------------


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "unwritten"
    return f"{value:,.0f}"


def _drain(value: float | None, timeout_s: float) -> str:
    return f">{timeout_s:.0f}" if value is None else f"{value:.1f}"


def table(results: list[PhaseResult], bench: BenchSettings) -> str:
    head = (
        "| offered/s | producer/s | processor/s | storage/s | lag at end: proc / store | "
        "drain s: proc / store | tick->row ms p50 / p95 / p99 (n) | "
        "window close->row ms p50 / p95 / p99 (n) | fell behind |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    lines = [head]
    for r in results:
        t, w = r.tick_to_row, r.window_to_row
        lines.append(
            f"| {r.rate:,} | {r.produced_per_s:,.0f} | {r.processed_per_s:,.0f} | "
            f"{r.stored_per_s:,.0f} | {r.processor_lag_end:,} / {r.storage_lag_end:,} | "
            f"{_drain(r.processor_drain_s, bench.drain_timeout_s)} / "
            f"{_drain(r.storage_drain_s, bench.drain_timeout_s)} | "
            f"{_ms(t.p50)} / {_ms(t.p95)} / {_ms(t.p99)} ({t.count:,}) | "
            f"{_ms(w.p50)} / {_ms(w.p95)} / {_ms(w.p99)} ({w.count:,}) | "
            f"{', '.join(r.behind()) or '- (kept up)'} |"
        )
    return "\n".join(lines)


SUSTAINED = (
    f"the producer at >= {KEPT_UP:.0%} of the rate, the processor's and storage's backlog gone "
    f"within {DRAIN_SHARE:.0%} of the load's duration (at least {MIN_DRAIN_S:.0f} s) after it "
    "stopped, and tick->row p99 under 1 s"
)


def verdict(results: list[PhaseResult]) -> str:
    sustained = [r for r in results if r.limiting_stage() is None and r.tick_to_row.p99 < 1000]
    best = max((r.rate for r in sustained), default=None)
    first_bad = next((r for r in results if r not in sustained), None)
    if best is None:
        parts = [f"No offered rate was sustained ({SUSTAINED})."]
    else:
        parts = [f"Highest sustained rate: {best:,} ticks/s ({SUSTAINED})."]
    if first_bad is not None:
        rates = first_bad.rates()
        behind = ", ".join(f"{s} ({rates[s]:,.0f}/s while the load was on)"
                           for s in first_bad.behind())  # fmt: skip
        if behind:
            parts.append(f"At {first_bad.rate:,} ticks/s these fell behind, slowest first: "
                         f"{behind}. Tick->row latency does not wait for the processor; window "
                         "close->row does.")  # fmt: skip
        else:
            parts.append(f"At {first_bad.rate:,} ticks/s every stage kept up, but tick->row p99 "
                         f"was {_ms(first_bad.tick_to_row.p99)} ms.")  # fmt: skip
    return " ".join(parts)


def report(results: list[PhaseResult], bench: BenchSettings, started: datetime) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    windows = ",".join(format_duration(w) for w in bench.windows_ms)
    return "\n".join(
        [
            f"# Pipeline benchmark, {started:%Y-%m-%d %H:%M} UTC",
            "",
            f"{bench.symbols} symbols, each rate offered for {bench.duration_s:.0f} s, windows "
            f"{windows}, Spark {bench.spark_master}; {os.cpu_count()} cores shared by "
            f"ZooKeeper, Kafka, Cassandra, Spark and the three stages "
            f"({'attached services' if bench.attached else 'its own stack'}); "
            f"load average at the end {load}; {platform.python_implementation()} "
            f"{platform.python_version()}.",
            "",
            table(results, bench),
            "",
            verdict(results),
            "",
            "Rates are per stage while the load was on (first seconds left out): producer = ticks "
            "appended to the ticks topic, processor = ticks through the aggregates query's "
            "committed micro-batches, storage = ticks committed after writing. tick->row = "
            "WRITETIME(price) - ts over every tick of "
            f"{bench.latency_symbols} symbols (ticks never written count as infinitely late). "
            "window close->row = written_at - window_end of the final row of every window that "
            "closed during the load (n/a when a stage did not drain). Both use the event time the "
            f"simulated producer stamps, which follows the wall clock. Drain timeout "
            f"{format_duration(int(bench.drain_timeout_s * 1000))}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    bench = parse_settings(argv)
    configure_logging(bench.log_level)
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    # SIGTERM unwinds like Ctrl-C, so the stages and a stack of its own are stopped on the way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = run(bench, stamp)
    except KeyboardInterrupt:
        logger.warning("interrupted; no results")
        return 130
    text = report(results, bench, started)
    bench.results_dir.mkdir(parents=True, exist_ok=True)
    out = bench.results_dir / f"pipeline-{stamp}.md"
    out.write_text(text + "\n")
    print(text)
    print(f"\nwritten to {out}; the stages' logs are in {bench.results_dir}/pipeline-{stamp}-logs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
