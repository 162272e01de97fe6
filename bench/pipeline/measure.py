"""One offered rate: the load, the drain, per-stage rates and latencies read back from Cassandra."""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field

from bench.cpu import cpu_seconds
from bench.pipeline.positions import Positions
from bench.pipeline.settings import BenchSettings
from bench.pipeline.stages import Stages
from common.contract import now_ms
from common.polling import WaitTimeout, wait_until

logger = logging.getLogger(__name__)

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
# A producer still publishing after this many times the phase's duration (plus start-up) is not
# offering the rate at all: the phase is abandoned rather than waited on for ever.
_LOAD_OVERRUN = 10
_LOAD_START_S = 120.0
_WARM_UP_TIMEOUT_S = 180.0


def warm_up(stages: Stages, positions: Positions, bench: BenchSettings) -> None:
    """A few ticks through every stage before anything is measured: Spark's first
    micro-batch starts its Python workers and state stores and takes several times longer than
    the next ones."""
    logger.info("warming up: %d ticks through every stage", 2 * bench.symbols)
    stages.start_producer(bench.symbols, 2 * bench.symbols, log_name="producer-warm-up")
    wait_until(
        lambda: stages.producer_done() and positions.caught_up(),
        _WARM_UP_TIMEOUT_S,
        "the warm-up ticks to get through every stage",
        every_s=0.5,
        check=stages.check,
    )


@dataclass
class Sample:
    t: float
    produced: int
    processed: int
    stored: int


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
    # The records a processor batch waits for (MIN_OFFSETS_PER_TRIGGER; 0: none): fewer than that
    # left when the load stops wait for MAX_TRIGGER_DELAY by design, which is not falling behind.
    processor_batch_min: int = 0
    # Seconds after the load until fewer than processor_batch_min records were left.
    processor_caught_up_s: float | None = None
    tick_to_row: Percentiles = field(default_factory=Percentiles)
    window_to_row: Percentiles = field(default_factory=Percentiles)
    producer_rc: int | None = None
    # CPU-seconds each stage used over the load and the drain (the producer's sampled once a
    # second while it ran, so its last second may be missing).
    cpu_s: dict[str, float] = field(default_factory=dict)

    def kept_up(self) -> dict[str, bool]:
        bound = max(MIN_DRAIN_S, DRAIN_SHARE * self.seconds)

        def drained(seconds: float | None) -> bool:
            return seconds is not None and seconds <= bound

        return {
            "producer": self.produced_per_s >= KEPT_UP * self.rate,
            "processor": drained(self.processor_caught_up_s),
            "storage": drained(self.storage_drain_s),
        }

    def cpu_per_1000(self, stage: str) -> float:
        """CPU-seconds the stage used per 1,000 ticks of this rate: a figure that travels
        between hosts better than a rate."""
        return 1000 * self.cpu_s.get(stage, math.nan) / self.ticks if self.ticks else math.nan

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


def rate_between(samples: list[Sample], attr: str, t0: float, t1: float) -> float:
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


class _Recorder:
    """Where the producer, the processor and storage are, sampled through a phase: counts since
    its start, at seconds since its start."""

    def __init__(self, positions: Positions):
        self._positions = positions
        self.base = positions.produced()
        self.began = time.monotonic()
        self.samples: list[Sample] = []

    def sample(self) -> Sample:
        p, base = self._positions, self.base
        s = Sample(time.monotonic() - self.began, p.produced() - base, p.processed() - base,
                   p.stored() - base)  # fmt: skip
        self.samples.append(s)
        return s


def _await_load(bench: BenchSettings, stages: Stages, recorder: _Recorder, rate: int,
                count: int) -> float:  # fmt: skip
    """Until the producer has published its ticks and exited; returns the CPU it used."""
    producer_pid = stages.supervisor.procs["producer"].pid
    producer_cpu = [0.0]
    progress = Progress(bench.duration_s, f"{rate:>6}/s")

    def load_over() -> bool:
        # Sampled once a second while the load is on, and once more when it is over.
        done = stages.producer_done()
        if not done:
            producer_cpu[0] = max(producer_cpu[0], cpu_seconds(producer_pid))
        s = recorder.sample()
        if not done:
            progress.show(s.t, f"produced={s.produced} processor_lag={s.produced - s.processed} "
                               f"storage_lag={s.produced - s.stored}")  # fmt: skip
        return done

    wait_until(
        load_over,
        _LOAD_START_S + _LOAD_OVERRUN * bench.duration_s,
        f"the producer to publish {count} ticks at {rate}/s",
        every_s=1.0,
        check=stages.check,
    )
    end = recorder.samples[-1]
    progress.show(end.t, f"produced={end.produced}; draining", force=True)
    progress.done()
    return producer_cpu[0]


def _await_drain(bench: BenchSettings, stages: Stages, recorder: _Recorder, end: Sample,
                 result: PhaseResult) -> None:  # fmt: skip
    """How long each reader needs to catch up once the load stops (None: not in time)."""

    def drained() -> bool:
        s = recorder.sample()
        left = end.produced - s.processed
        if result.processor_caught_up_s is None and left < max(1, result.processor_batch_min):
            result.processor_caught_up_s = s.t - end.t
        if result.processor_drain_s is None and left <= 0:
            result.processor_drain_s = s.t - end.t
        if result.storage_drain_s is None and s.stored >= end.produced:
            result.storage_drain_s = s.t - end.t
        return result.processor_drain_s is not None and result.storage_drain_s is not None

    try:
        wait_until(drained, bench.drain_timeout_s, "every stage to drain", every_s=0.5,
                   check=stages.check)  # fmt: skip
    except WaitTimeout:
        pass  # a reader that did not drain in time is a finding (shown as >timeout), not an error


def _load_rates(result: PhaseResult, samples: list[Sample], end: Sample) -> None:
    # The load period: after the producer's start-up, up to the last sample taken before its
    # final tick landed, so both ends are inside the load (samples are ~1 s apart; one taken
    # after the end would count idle time as if the stage had been slow).
    t0 = min(WARM_UP_S, end.t / 2)
    t1 = max((s.t for s in samples if s.produced < end.produced), default=end.t)
    if t1 - t0 < 2.0:
        t0, t1 = 0.0, end.t
    result.produced_per_s = rate_between(samples, "produced", t0, t1)
    result.processed_per_s = rate_between(samples, "processed", t0, t1)
    result.stored_per_s = rate_between(samples, "stored", t0, t1)


def run_phase(
    bench: BenchSettings, stages: Stages, positions: Positions, session, rate: int
) -> PhaseResult:
    count = int(rate * bench.duration_s)
    result = PhaseResult(rate=rate, ticks=count, processor_batch_min=stages.processor_batch_min())
    recorder = _Recorder(positions)
    base = recorder.base
    result.backlog_at_start = (base - positions.processed()) + (base - positions.stored())
    first_ms = now_ms()
    procs = stages.supervisor.procs
    readers = {name: procs[name].pid for name in ("processor", "storage")}
    cpu_at_start = {name: cpu_seconds(pid) for name, pid in readers.items()}
    stages.start_producer(rate, count)

    producer_cpu = _await_load(bench, stages, recorder, rate, count)
    result.producer_rc = stages.producer_exit_code()
    end = recorder.samples[-1]
    load_end_ms = now_ms()
    result.seconds = end.t
    result.processor_lag_end = end.produced - end.processed
    result.storage_lag_end = end.produced - end.stored

    _await_drain(bench, stages, recorder, end, result)
    result.cpu_s = {name: cpu_seconds(pid) - cpu_at_start[name] for name, pid in readers.items()}
    result.cpu_s["producer"] = producer_cpu
    _load_rates(result, recorder.samples, end)
    result.tick_to_row = tick_latency(bench, session, stages, first_ms, now_ms(), count)
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
