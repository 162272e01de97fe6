"""`python -m bench.idle` (make bench-idle): what the pipeline costs at rest and at low rates.

The whole pipeline as `make local` runs it (ZooKeeper, Kafka, Cassandra, then storage, the
processor, the dashboard and the simulated producer), on topics and a keyspace of its own. For
each offered rate in turn (0: no producer at all), after a warm-up, the CPU each process used is
read from /proc over the measuring window: cores per process, the total, and for a rate above 0
the CPU-seconds it took per 1,000 ticks. Those travel between hosts far better than rates; the
CPU model is printed with them all the same.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.cpu import cpu_model, cpu_seconds
from bench.pipeline.stages import Stages, Target
from bench.results import publish
from common.logs import configure_logging
from common.settings import (
    LOG_LEVEL,
    WINDOWS,
    EnvArgumentParser,
    add_options,
    duration_ms,
    fail,
    option,
    parse_settings,
    path_value,
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
    symbols: int = option(
        "--symbols", "IDLE_SYMBOLS", "3", "symbols the simulated producer follows", positive_int
    )
    windows_ms: tuple[int, ...] = WINDOWS.field()
    spark_master: str = option(
        "--spark-master", "SPARK_MASTER", "local[2]", "the processor's master", text
    )
    results_dir: Path = option(
        "--results-dir", "BENCH_RESULTS_DIR", "bench-results", "where the table is written",
        path_value,
    )  # fmt: skip
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


def measure(pids: dict[str, int], window_s: float) -> dict[str, float]:
    """Cores each process (with its descendants) used over the window."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(window_s)  # the measuring window itself, not a wait for anything
    took = time.monotonic() - started
    return {name: (cpu_seconds(pid) - before[name]) / took for name, pid in pids.items()}


def run(idle: IdleSettings) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="idle-bench-") as tmp:
        work = Path(tmp)
        # Always a stack of its own: the JVMs' CPU is part of what is measured.
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CASSANDRA_HOSTS")}  # fmt: skip
        with services(environ, work / "stack") as found:
            target = Target.on(found, uuid.uuid4().hex[:10], work, work / "logs")
            ensure_topics(found.bootstrap_servers, target.topics)
            symbols = [f"I{i:03d}" for i in range(idle.symbols)]
            stages = Stages(target, idle, symbols, spark_kafka_jars(found.cache_dir))
            try:
                stages.start_readers()
                stages.supervisor.start(
                    "dashboard",
                    env={"DASHBOARD_PORT": str(free_port()),
                         "DASHBOARD_CONSUMER_GROUP": f"bench-dashboard-{target.run_id}"},
                )  # fmt: skip
                jvms = {name: found.stack.pid(name) for name in SERVICES} if found.stack else {}
                for rate in idle.rates:
                    if rate:
                        total_s = idle.warm_up_s + idle.measure_s + 60
                        stages.start_producer(
                            rate, int(rate * total_s), log_name=f"producer-{rate}"
                        )
                    logger.info("rate %d/s: warming up %.0fs, then measuring %.0fs",
                                rate, idle.warm_up_s, idle.measure_s)  # fmt: skip
                    time.sleep(idle.warm_up_s)  # the warm-up itself
                    stages.check()
                    procs = stages.supervisor.procs
                    pids = {name: procs[name].pid for name in ("storage", "processor", "dashboard")}
                    if rate:
                        pids["producer"] = procs["producer"].pid
                    pids.update({name: pid for name, pid in jvms.items() if pid})
                    results[rate] = measure(pids, idle.measure_s)
                    stages.check()
                    if rate:
                        stages.supervisor.stop("producer")
                    logger.info("rate %d/s: %s", rate, _line(results[rate]))
            finally:
                stages.stop_all()
    return results


def _line(cores: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.3f}" for name, value in cores.items())


ORDER = ("processor", "storage", "dashboard", "producer", "cassandra", "kafka", "zookeeper")


def report(results: dict[int, dict[str, float]], idle: IdleSettings, started: datetime) -> str:
    rates_ = sorted(results)
    head = "| process | " + " | ".join(f"{r}/s" for r in rates_) + " |"
    rows = [head, "| --- |" + " ---: |" * len(rates_)]
    for name in ORDER:
        if any(name in results[r] for r in rates_):
            cells = [f"{results[r][name]:.3f}" if name in results[r] else "-" for r in rates_]
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [sum(results[r].values()) for r in rates_]
    rows.append("| **all** | " + " | ".join(f"**{t:.3f}**" for t in totals) + " |")
    per_k = [f"{t / r * 1000:.1f}" if r else "-" for t, r in zip(totals, rates_, strict=True)]
    rows.append("| CPU-s per 1,000 ticks | " + " | ".join(per_k) + " |")
    windows = ",".join(f"{w // 1000}s" for w in idle.windows_ms)
    return "\n".join([
        f"# Pipeline CPU at rest and at low rates, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Cores used per process (with its children), read from /proc over "
        f"{idle.measure_s:.0f} s after {idle.warm_up_s:.0f} s at each rate; {idle.symbols} "
        f"symbols, windows {windows}, Spark {idle.spark_master}; {cpu_model()}.",
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
    except (StackError, ResolveError) as e:
        fail(PROG, str(e))
    table = report(results, idle, started)
    out = publish(table, idle.results_dir, f"idle-{started:%Y%m%dT%H%M%SZ}")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
