"""`python -m bench.pipeline` (make bench-pipeline): the whole pipeline at fixed offered rates.

One pipeline (storage, processor, producer as subprocesses, exactly as `make local` runs them) on
topics, a keyspace and a checkpoint of its own. For each offered rate, ascending, the simulated
producer publishes `rate` ticks/s over the symbols for the set duration; then the bench waits for
the processor and storage to drain before the next rate. Measured:

- throughput per stage while the load is on: ticks appended to the ticks topic (producer), ticks
  read by the processor's committed micro-batches (from its checkpoint's offset log),
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

import contextlib
import logging
import os
import signal
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.pipeline.measure import PhaseResult, run_phase, warm_up
from bench.pipeline.positions import Positions, delete_topics
from bench.pipeline.report import report
from bench.pipeline.settings import BenchSettings, parse
from bench.pipeline.stages import Stages, Target
from bench.results import publish, stamp
from common.cql import connect
from common.logs import configure_logging
from common.settings import fail
from common.topics import ensure_topics
from stack.artifacts import ResolveError, spark_kafka_jars
from stack.endpoints import services
from stack.native import StackError

logger = logging.getLogger(__name__)

PROG = "python -m bench.pipeline"


def run(bench: BenchSettings, stamp: str) -> list[PhaseResult]:
    logs_dir = (bench.results_dir / f"pipeline-{stamp}-logs").resolve()
    logs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        work = Path(tmp)
        with services(bench.services_environ(os.environ), work / "stack") as found:
            jars = spark_kafka_jars(found.cache_dir)
            target = Target.on(found, uuid.uuid4().hex[:10], work, logs_dir)
            ensure_topics(found.bootstrap_servers, target.topics)
            symbols = [f"B{i:04d}" for i in range(bench.symbols)]
            stages = Stages(target, bench, symbols, jars)
            cluster, session = connect(found.cassandra_hosts, found.cassandra_port)
            positions = Positions(target)
            results: list[PhaseResult] = []
            try:
                logger.info("waiting for the processor's queries (a JVM start, ~15 s)")
                stages.start_readers()
                warm_up(stages, positions, bench)
                for rate in bench.rates:
                    logger.info("offering %d ticks/s for %.0fs", rate, bench.duration_s)
                    results.append(run_phase(bench, stages, positions, session, rate))
            finally:
                stages.stop_all()
                positions.close()
                if found.stack is None:
                    # Someone else's services: leave nothing of ours behind but the logs.
                    with contextlib.suppress(Exception):
                        session.execute(f"DROP KEYSPACE IF EXISTS {target.keyspace}", timeout=60)
                    delete_topics(target)
                cluster.shutdown()
    return results


def main(argv: list[str] | None = None) -> int:
    bench = parse(argv)
    configure_logging(bench.log_level)
    started = datetime.now(timezone.utc)
    run_stamp = stamp(started)
    # SIGTERM unwinds like Ctrl-C, so the stages and a stack of its own are stopped on the way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = run(bench, run_stamp)
    except KeyboardInterrupt:
        logger.warning("interrupted; no results")
        return 130
    except (StackError, ResolveError) as e:
        fail(PROG, str(e))
    publish(report(results, bench, started), bench.results_dir, f"pipeline-{run_stamp}")
    print(f"the stages' logs are in {bench.results_dir}/pipeline-{run_stamp}-logs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
