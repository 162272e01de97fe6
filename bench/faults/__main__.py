"""`python -m bench.faults` (make bench-faults): what a node's death costs the pipeline, and what
replication costs it, on a three-node cluster of its own (python -m stack up --nodes 3, on free
ports in a temporary directory).

For each fault (a Kafka broker leading a ticks partition, the ZooKeeper leader, a Cassandra
node), the producer and storage carry the offered rate on topics and a keyspace of their own;
the node is SIGKILLed, started again after the fault's length, and the figures are read from the
rows afterwards (tests/integration/cluster proves, under the same faults, that no tick is lost
or stored twice; this measures how long and how slow). Then the whole pipeline, processor too,
is offered the same rate at replication 1 and at replication 3 on the same cluster.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.faults import phases
from bench.faults.report import report
from bench.faults.settings import FaultBenchSettings, parse
from bench.pipeline.settings import BenchSettings
from bench.pipeline.stages import Stages
from bench.results import publish, stamp
from common.cql import connect
from common.logs import configure_logging
from common.settings import fail
from stack.artifacts import ResolveError, spark_kafka_jars
from stack.native import NativeStack, StackError
from stack.settings import StackSettings

logger = logging.getLogger(__name__)

PROG = "python -m bench.faults"


def _cluster(work: Path) -> NativeStack:
    settings = StackSettings.on_free_ports(
        work / "stack", nodes=3, zookeeper_heap="128m", kafka_heap="384m",
        cassandra_heap="768m", start_timeout_s=900.0,
    )  # fmt: skip
    return NativeStack(settings, tie_to_parent=True)


def _stages(stack: NativeStack, bench: FaultBenchSettings, work: Path, logs_dir: Path,
            replication: int, jars: list) -> Stages:  # fmt: skip
    target = phases.make_target(stack, uuid.uuid4().hex[:10], work, logs_dir)
    phases.create_topics(target, replication)
    symbols = [f"F{i:03d}" for i in range(bench.symbols)]
    return Stages(target, BenchSettings(), symbols, jars, **phases.storage_settings(replication))


def run(bench: FaultBenchSettings, stamp: str, started: datetime) -> str:
    logs_dir = (bench.results_dir / f"faults-{stamp}-logs").resolve()
    with tempfile.TemporaryDirectory(prefix="faults-bench-") as tmp:
        work = Path(tmp)
        stack = _cluster(work)
        try:
            up_s = stack.up()
            jars = spark_kafka_jars(stack.settings.cache_dir)
            settings = stack.settings
            cluster, session = connect(settings.cassandra_hosts, settings.cassandra_port)
            try:
                faults = [
                    phases.run_fault(bench, fault, stack,
                                     _stages(stack, bench, work, logs_dir, 3, jars), session)
                    for fault in bench.faults
                ]  # fmt: skip
                replication = []
                if bench.replication_s > 0:
                    replication = [
                        phases.run_replication(
                            bench, rf, _stages(stack, bench, work, logs_dir, rf, jars), stack,
                            session)
                        for rf in (1, 3)
                    ]  # fmt: skip
            finally:
                cluster.shutdown()
        finally:
            stack.down()
    return report(faults, replication, bench, started, up_s)


def main(argv: list[str] | None = None) -> int:
    bench = parse(argv)
    configure_logging(bench.log_level)
    started = datetime.now(timezone.utc)
    run_stamp = stamp(started)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    began = time.monotonic()
    try:
        text = run(bench, run_stamp, started)
    except KeyboardInterrupt:
        logger.warning("interrupted; no results")
        return 130
    except (StackError, ResolveError) as e:
        fail(PROG, str(e))
    publish(text, bench.results_dir, f"faults-{run_stamp}")
    print(f"the run took {time.monotonic() - began:.0f} s; the stages' logs are in "
          f"{bench.results_dir}/faults-{run_stamp}-logs/")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
