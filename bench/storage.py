"""python -m bench.storage: rows/s into Cassandra, our writer beside a naive one and a loader.

Everything is measured in one run on the same node, so the ratios compare like with like:
- naive: one INSERT at a time, waiting for each (what the original course project did);
- storage writer: CassandraWriter.write() as the consumer calls it, one process;
- the same writer without per-partition batches (one request per row);
- a load tool: cassandra-stress is not published on Maven Central, so a multi-process
  cassandra-driver loader stands in, with single-row prepared inserts (what cassandra-stress
  does by default) and with per-partition batches; its best rate is the node's ceiling here.

If CASSANDRA_HOSTS is unset, a Cassandra of its own is started on free ports and stopped at the
end (stack.endpoints). Only tick rows are counted (the writer's few latest_prices rows are extra
work it does).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import cpu_model
from bench.results import RESULTS_DIR, publish, stamp
from common.contract import Tick
from common.cql import connect
from common.logs import configure_logging
from common.settings import (
    CASSANDRA_PORT,
    LOG_LEVEL,
    EnvArgumentParser,
    add_options,
    option,
    parse_settings,
    positive_int,
    text,
    tuple_of,
)
from stack.endpoints import services
from stack.services import CASSANDRA
from storage import schema
from storage.rows import by_partition, tick_values
from storage.settings import replication
from storage.writer import CassandraWriter

logger = logging.getLogger(__name__)

BASE_TS = 1_756_300_000_000  # 2025-08-27, a fixed day: runs are comparable
SYMBOLS = 100
INSERT_TICK = (
    "INSERT INTO {ks}.ticks (symbol, day, ts, seq, price, volume, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?"
)


@dataclass(frozen=True)
class BenchSettings:
    cassandra_hosts: tuple[str, ...] | None = option(
        "--cassandra-hosts",
        "CASSANDRA_HOSTS",
        None,
        "use this Cassandra; unset: start one of its own",
        tuple_of(text),
    )
    cassandra_port: int = CASSANDRA_PORT.field()
    rows: int = option(
        "--rows", "BENCH_ROWS", "300000", "rows written by each batching method", positive_int
    )
    single_rows: int = option(
        "--single-rows",
        "BENCH_SINGLE_ROWS",
        "60000",
        "rows written by each request-per-row method",
        positive_int,
    )
    naive_rows: int = option(
        "--naive-rows",
        "BENCH_NAIVE_ROWS",
        "10000",
        "rows written by the naive writer",
        positive_int,
    )
    processes: tuple[int, ...] = option(
        "--processes",
        "BENCH_PROCESSES",
        "2,4",
        "loader process counts to try, comma separated",
        tuple_of(positive_int),
    )
    batch_size: int = option(
        "--batch-size",
        "BATCH_SIZE",
        "5000",
        "records per write() call, as the consumer's BATCH_SIZE",
        positive_int,
    )
    concurrency: int = option(
        "--write-concurrency",
        "WRITE_CONCURRENCY",
        "32",
        "requests in flight for the storage writer",
        positive_int,
    )
    results_dir: Path = RESULTS_DIR.field()
    log_level: str = LOG_LEVEL.field()

    def services_environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` with the Cassandra these settings name (a flag beats its env twin), for
        stack.endpoints.services to attach to; without one it starts a Cassandra of its own."""
        env = {k: v for k, v in environ.items() if k not in ("CASSANDRA_HOSTS", "CASSANDRA_PORT")}
        if self.cassandra_hosts:
            env["CASSANDRA_HOSTS"] = ",".join(self.cassandra_hosts)
            env["CASSANDRA_PORT"] = str(self.cassandra_port)
        return env


@dataclass(frozen=True)
class Figure:
    method: str
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def make_ticks(prefix: str, n: int) -> list[Tick]:
    """n distinct ticks over SYMBOLS symbols, spread over one day like a live feed."""
    return [
        Tick(f"{prefix}{i % SYMBOLS}", 100.0 + (i % 997) / 100, 1 + i % 50,
             BASE_TS + i // SYMBOLS, "bench", 0)
        for i in range(n)
    ]  # fmt: skip


def timed(method: str, rows: int, work: Callable[[], None]) -> Figure:
    started = time.perf_counter()
    work()
    figure = Figure(method, rows, time.perf_counter() - started)
    logger.info("%s rows=%d seconds=%.2f rows_per_s=%.0f", method, rows, figure.seconds,
                figure.rate)  # fmt: skip
    return figure


def bench_naive(session, ks: str, n: int) -> Figure:
    insert = session.prepare(INSERT_TICK.format(ks=ks))
    ticks = make_ticks("NAIVE", n)

    def work() -> None:
        for t in ticks:
            session.execute(insert, tick_values(t, 0))

    return timed("naive: one INSERT at a time, synchronous", n, work)


def bench_writer(
    session, ks: str, s: BenchSettings, rows: int, rows_per_batch: int, label: str
) -> Figure:
    writer = CassandraWriter(session, ks, concurrency=s.concurrency, rows_per_batch=rows_per_batch)
    writer.prepare()
    ticks = make_ticks(f"W{rows_per_batch}X", rows)

    def work() -> None:
        for i in range(0, len(ticks), s.batch_size):
            writer.write(ticks[i : i + s.batch_size], [])

    return timed(label, rows, work)


def _loader_process(hosts, port, ks, prefix, n, batched, start_barrier, results) -> None:
    from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
    from cassandra.query import BatchStatement, BatchType

    cluster, session = connect(hosts, port)
    try:
        insert = session.prepare(INSERT_TICK.format(ks=ks))
        ticks = make_ticks(prefix, n)
        start_barrier.wait()
        # Building the statements is part of the work, as it is for the storage writer.
        started = time.time()
        if batched:
            batches = []
            for chunk in by_partition(ticks, 100):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for t in chunk:
                    batch.add(insert, tick_values(t, 0))
                batches.append((batch, None))
            execute_concurrent(session, batches, concurrency=32)
        else:
            params = [tick_values(t, 0) for t in ticks]
            execute_concurrent_with_args(session, insert, params, concurrency=100)
        results.put((started, time.time()))
    finally:
        cluster.shutdown()


def bench_loader(hosts, port, ks: str, processes: int, rows: int, batched: bool) -> Figure:
    ctx = multiprocessing.get_context("spawn")  # the driver's IO threads do not survive fork
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    per = rows // processes
    workers = [
        ctx.Process(target=_loader_process,
                    args=(list(hosts), port, ks, f"L{processes}{batched:d}P{i}X", per, batched,
                          barrier, results))
        for i in range(processes)
    ]  # fmt: skip
    for w in workers:
        w.start()
    spans = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    how = "partition batches of 100" if batched else "single-row inserts"
    figure = Figure(f"loader: {processes} processes, {how}", per * processes, seconds)
    logger.info("%s rows_per_s=%.0f", figure.method, figure.rate)
    return figure


def run(s: BenchSettings, hosts: tuple[str, ...], port: int) -> list[Figure]:
    ks = f"bench_{uuid.uuid4().hex[:8]}"
    cluster, session = connect(hosts, port)
    try:
        schema.apply(session, ks, replication("SimpleStrategy:1"))
        # Warm-up: JIT, memtables and connections, so the first method measured is not taxed.
        warm = CassandraWriter(session, ks, concurrency=s.concurrency).prepare()
        warm_ticks = make_ticks("WARM", 30_000)
        for i in range(0, len(warm_ticks), s.batch_size):
            warm.write(warm_ticks[i : i + s.batch_size], [])
        figures = [
            bench_naive(session, ks, s.naive_rows),
            bench_writer(session, ks, s, s.single_rows, 1, "storage writer, no partition batches"),
            bench_writer(session, ks, s, s.rows, 100, "storage writer (what the consumer runs)"),
        ]
        for batched in (False, True):
            rows = s.rows if batched else s.single_rows
            for p in s.processes:
                figures.append(bench_loader(hosts, port, ks, p, rows, batched))
        return figures
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=120)
        cluster.shutdown()


def table(figures: list[Figure]) -> str:
    naive = next(f for f in figures if f.method.startswith("naive"))
    loaders = [f for f in figures if f.method.startswith("loader")]
    best_loader = max(loaders, key=lambda f: f.rate) if loaders else None
    head = (f"{'method':<48} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'x naive':>8} "
            f"{'x best loader':>13}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for f in figures:
        vs_loader = f"{f.rate / best_loader.rate:.2f}" if best_loader else "-"
        lines.append(f"{f.method:<48} {f.rows:>8} {f.seconds:>8.2f} {f.rate:>9.0f} "
                     f"{f.rate / naive.rate:>8.1f} {vs_loader:>13}")  # fmt: skip
    return "\n".join(lines)


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m bench.storage", description=__doc__.split("\n")[0], environ=environ
    )
    add_options(parser, BenchSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    s, _ = parse_settings(BenchSettings, build_parser(), argv)
    configure_logging(s.log_level)
    with (
        tempfile.TemporaryDirectory(prefix="storage-bench-") as tmp,
        services(s.services_environ(os.environ), Path(tmp), needs=(CASSANDRA,)) as found,
    ):
        figures = run(s, found.cassandra_hosts, found.cassandra_port)
        where = f"{','.join(found.cassandra_hosts)}:{found.cassandra_port}"
        if found.stack is not None:
            where = f"its own Cassandra on port {found.cassandra_port}"
    ours = next(f for f in figures if f.method.startswith("storage writer (what"))
    goal = "met" if ours.rate >= 20_000 else "NOT met"
    text = "\n".join([
        f"storage bench: one Cassandra node ({where}); rows/s of tick rows, one run; "
        f"{cpu_model()}",
        table(figures),
        "",
        f"goal >= 20,000 rows/s from one process: {goal} ({ours.rate:,.0f} rows/s)",
    ])  # fmt: skip
    publish(text, s.results_dir, f"storage-{stamp()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
