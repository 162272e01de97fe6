"""`python -m bench.idle` (make bench-idle): what the pipeline costs at rest and at low rates.

The whole pipeline as `make local` runs it (ZooKeeper, Kafka, Cassandra, then storage, the
processor, the dashboard and the simulated producer, publishing ticks only: a backfill is a cost
of the start, bench.history's), on topics and a keyspace of its own; or, with --under compose,
as `make up` runs it (its producer backfills), in a compose project of its own. For each offered
rate in turn (0: no producer at all), after a warm-up, the CPU each process (or container) used
is read over the measuring window, from /proc (or the container's cgroup, through the engine):
cores per process, the total, and for a rate above 0 the CPU-seconds it took per 1,000 ticks.
Those travel between hosts far better than rates; the CPU model is printed with them all the
same.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.compose_pipeline import ComposeError, ComposePipeline
from bench.cpu import cpu_model, cpu_seconds
from bench.pipeline.stages import Stages, Target
from bench.results import RESULTS_DIR, publish, stamp
from common.logs import configure_logging
from common.settings import (
    LOG_LEVEL,
    WINDOWS,
    EnvArgumentParser,
    add_options,
    duration_ms,
    fail,
    format_duration,
    one_of,
    option,
    parse_settings,
    positive_int,
    text,
)
from common.topics import ensure_topics
from stack.artifacts import ResolveError, spark_kafka_jars
from stack.endpoints import services
from stack.native import StackError
from stack.services import SERVICES
from stack.settings import free_port

logger = logging.getLogger(__name__)
PROG = "python -m bench.idle"


def rates(value: str) -> tuple[int, ...]:
    """Offered rates, ascending and distinct; 0 is the pipeline at rest (no producer)."""
    try:
        found = sorted({int(p) for p in value.split(",") if p.strip()})
    except ValueError:
        found = []
    if not found or found[0] < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: give ticks/s of 0 or more, e.g. 0,10,100")
    return tuple(found)


def seconds(value: str) -> float:
    return duration_ms(value) / 1000


@dataclass(frozen=True)
class IdleSettings:
    rates: tuple[int, ...] = option(
        "--rates", "IDLE_RATES", "0,10,100,1000",
        "offered ticks/s over all symbols, measured in turn (0: no producer)", rates,
    )  # fmt: skip
    warm_up_s: float = option(
        "--warm-up", "IDLE_WARM_UP", "60s", "how long each rate runs before it is measured",
        seconds,
    )  # fmt: skip
    measure_s: float = option(
        "--measure", "IDLE_MEASURE", "60s", "how long each rate is measured", seconds
    )
    rounds: int = option(
        "--rounds", "IDLE_ROUNDS", "1",
        "measuring windows per rate, back to back: more than one shows how the cost moves with "
        "uptime (the JVMs keep compiling for minutes after they start)", positive_int,
    )  # fmt: skip
    symbols: int = option(
        "--symbols", "IDLE_SYMBOLS", "3", "symbols the simulated producer follows", positive_int
    )
    windows_ms: tuple[int, ...] = WINDOWS.field()
    spark_master: str = option(
        "--spark-master", "SPARK_MASTER", "local[2]", "the processor's master (natively)", text
    )
    under: str = option(
        "--under", "IDLE_UNDER", "native",
        "native: the pipeline as make local runs it; compose: as make up runs it (containers of "
        "a project of its own, built from this checkout; needs a Docker engine)",
        one_of(("native", "compose")),
    )  # fmt: skip
    compose_spark: str = option(
        "--compose-spark", "IDLE_COMPOSE_SPARK", "local",
        "under compose: Spark inside the processor (local) or on a master and worker (cluster, "
        "as make up SPARK=cluster)",
        one_of(("local", "cluster")),
    )  # fmt: skip
    results_dir: Path = RESULTS_DIR.field()
    log_level: str = LOG_LEVEL.field()


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog=PROG,
        description="The pipeline's CPU per process at rest and at low offered rates, on a "
        "stack of its own. Results go to --results-dir.",
        environ=environ,
    )
    add_options(parser, IdleSettings)
    return parser


def measure(read_cpu: Callable[[], dict[str, float]], window_s: float) -> dict[str, float]:
    """Cores each process or container used over the window (read_cpu: CPU-seconds so far)."""
    before = read_cpu()
    started = time.monotonic()
    time.sleep(window_s)  # the measuring window itself, not a wait for anything
    took = time.monotonic() - started
    after = read_cpu()
    return {name: (after[name] - before[name]) / took for name in after if name in before}


class NativePipeline:
    """The pipeline as `make local` runs it, on a stack of its own (the JVMs' CPU is part of
    what is measured), with topics and a keyspace of its own."""

    def __init__(self, idle: IdleSettings, symbols: list[str]):
        self._idle = idle
        self._symbols = symbols
        self._exit = ExitStack()
        self._stages: Stages | None = None
        self._jvms: dict[str, int] = {}
        self.producing = False

    def __enter__(self) -> NativePipeline:
        with ExitStack() as opened:
            work = Path(opened.enter_context(tempfile.TemporaryDirectory(prefix="idle-bench-")))
            environ = {k: v for k, v in os.environ.items()
                       if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CASSANDRA_HOSTS")}  # fmt: skip
            found = opened.enter_context(services(environ, work / "stack"))
            target = Target.on(found, uuid.uuid4().hex[:10], work, work / "logs")
            ensure_topics(found.bootstrap_servers, target.topics)
            stages = Stages(target, self._idle, self._symbols, spark_kafka_jars(found.cache_dir))
            opened.callback(stages.stop_all)
            stages.start_readers()
            stages.supervisor.start(
                "dashboard",
                env={"DASHBOARD_PORT": str(free_port()),
                     "DASHBOARD_CONSUMER_GROUP": f"bench-dashboard-{target.run_id}"},
            )  # fmt: skip
            if found.stack:
                self._jvms = {name: found.stack.pid(name) for name in SERVICES}
            self._stages = stages
            self._exit = opened.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def offer(self, rate: int) -> None:
        if self.producing:
            self._stages.supervisor.stop("producer")
            self.producing = False
        if rate:
            lasts_s = self._idle.warm_up_s + self._idle.rounds * self._idle.measure_s + 60
            self._stages.start_producer(rate, int(rate * lasts_s), log_name=f"producer-{rate}")
            self.producing = True

    def cpu_seconds(self) -> dict[str, float]:
        procs = self._stages.supervisor.procs
        names = ["storage", "processor", "dashboard"] + (["producer"] if self.producing else [])
        pids = {name: procs[name].pid for name in names}
        pids.update({name: pid for name, pid in self._jvms.items() if pid})
        return {name: cpu_seconds(pid) for name, pid in pids.items()}

    def check(self) -> None:
        self._stages.check()


# A column of the table: (offered rate, measuring round at that rate).
Column = tuple[int, int]


def run(idle: IdleSettings) -> dict[Column, dict[str, float]]:
    symbols = [f"I{i:03d}" for i in range(idle.symbols)]
    if idle.under == "native":
        pipeline: NativePipeline | ComposePipeline = NativePipeline(idle, symbols)
    else:
        pipeline = ComposePipeline(symbols, _windows(idle), idle.compose_spark)
    results: dict[Column, dict[str, float]] = {}
    with pipeline:
        for rate in idle.rates:
            pipeline.offer(rate)
            logger.info("rate %d/s: warming up %.0fs, then measuring %d x %.0fs",
                        rate, idle.warm_up_s, idle.rounds, idle.measure_s)  # fmt: skip
            time.sleep(idle.warm_up_s)  # the warm-up itself
            for round_ in range(idle.rounds):
                pipeline.check()
                results[rate, round_] = measure(pipeline.cpu_seconds, idle.measure_s)
                logger.info("%s: %s", _label(idle, (rate, round_)), _line(results[rate, round_]))
            pipeline.check()
        pipeline.offer(0)
    return results


def _windows(idle: IdleSettings) -> str:
    return ",".join(format_duration(w) for w in idle.windows_ms)


def _line(cores: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.3f}" for name, value in cores.items())


ORDER = ("processor", "spark-worker", "spark-master", "storage", "dashboard", "producer",
         "cassandra", "kafka", "zookeeper")  # fmt: skip


def _label(idle: IdleSettings, column: Column) -> str:
    rate, round_ = column
    if idle.rounds == 1:
        return f"{rate}/s"
    begins = idle.warm_up_s + round_ * idle.measure_s
    return f"{rate}/s, {begins:.0f}-{begins + idle.measure_s:.0f} s"


def report(results: dict[Column, dict[str, float]], idle: IdleSettings, started: datetime) -> str:
    columns = sorted(results)
    head = "| process | " + " | ".join(_label(idle, c) for c in columns) + " |"
    rows = [head, "| --- |" + " ---: |" * len(columns)]
    for name in ORDER:
        if any(name in results[c] for c in columns):
            cells = [f"{results[c][name]:.3f}" if name in results[c] else "-" for c in columns]
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [sum(results[c].values()) for c in columns]
    rows.append("| **all** | " + " | ".join(f"**{t:.3f}**" for t in totals) + " |")
    per_k = [f"{t / rate * 1000:.1f}" if rate else "-"
             for t, (rate, _) in zip(totals, columns, strict=True)]  # fmt: skip
    rows.append("| CPU-s per 1,000 ticks | " + " | ".join(per_k) + " |")
    if idle.under == "native":
        how = "Natively (make local): cores used per process (with its children), read from /proc"
        spark = f"Spark {idle.spark_master}"
    else:
        how = "Under compose (make up): cores used per container, read from its cgroup"
        spark = "Spark " + ("local[*] in the processor" if idle.compose_spark == "local"
                            else "on a standalone master and worker (SPARK=cluster)")  # fmt: skip
    rounds = (f" ({idle.rounds} windows back to back, timed from the rate's start)"
              if idle.rounds > 1 else "")  # fmt: skip
    return "\n".join([
        f"# Pipeline CPU at rest and at low rates, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"{how} over {idle.measure_s:.0f} s after {idle.warm_up_s:.0f} s at each rate"
        f"{rounds}; "
        f"{idle.symbols} symbols, windows {_windows(idle)}, {spark}; {cpu_model()}.",
        "",
        *rows,
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    idle, _ = parse_settings(IdleSettings, build_parser(), argv)
    configure_logging(idle.log_level)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = datetime.now(timezone.utc)
    try:
        results = run(idle)
    except KeyboardInterrupt:
        logger.warning("interrupted; no results")
        return 130
    except (StackError, ResolveError, ComposeError) as e:
        fail(PROG, str(e))
    table = report(results, idle, started)
    publish(table, idle.results_dir, f"idle-{stamp(started)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
