"""The two kinds of phase on one running cluster: a node killed and restarted under load, and
the whole pipeline offered a rate at a given replication factor."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.cpu import cpu_seconds
from bench.faults.settings import BROKER, CASSANDRA, ZOOKEEPER, FaultBenchSettings
from bench.faults.timeline import Marks, Timeline, analyse
from bench.pipeline.measure import PhaseResult, run_phase, warm_up
from bench.pipeline.positions import Positions
from bench.pipeline.settings import BenchSettings
from bench.pipeline.stages import Stages, Target
from common.contract import now_ms
from common.polling import wait_until
from stack import cluster_view, readiness
from stack.native import NativeStack

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
_DRAIN_TIMEOUT_S = 600.0


@dataclass
class FaultResult:
    fault: str
    victim: str
    down_s: float
    published: int
    stored: int
    timeline: Timeline
    producer_summary: str


@dataclass
class ReplicationResult:
    replication: int
    phase: PhaseResult
    # CPU-seconds the cluster's nine JVMs used over the phase.
    cluster_cpu_s: float

    def cluster_cpu_per_1000(self) -> float:
        return 1000 * self.cluster_cpu_s / self.phase.ticks if self.phase.ticks else float("nan")


def make_target(stack: NativeStack, run_id: str, work: Path, logs_dir: Path) -> Target:
    s = stack.settings
    return Target(s.bootstrap_servers, s.cassandra_hosts, s.cassandra_port, run_id,
                  work / f"checkpoints-{run_id}", logs_dir)  # fmt: skip


def create_topics(target: Target, replication: int) -> None:
    """The run's topics at `replication`; min.insync.replicas follows it (2 of 3, 1 of 1), or a
    topic of one replica would refuse every acks=all write on the cluster's default of 2."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    configs = {"min.insync.replicas": str(min(2, replication))}
    admin = KafkaAdminClient(bootstrap_servers=target.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(t, 3, replication, topic_configs=configs)
                             for t in target.topics])  # fmt: skip
    finally:
        admin.close()


def storage_settings(replication: int) -> dict[str, str]:
    if replication == 1:
        return {"CASSANDRA_REPLICATION": "SimpleStrategy:1", "CASSANDRA_CONSISTENCY": "one"}
    return {"CASSANDRA_REPLICATION": f"NetworkTopologyStrategy:datacenter1={replication}",
            "CASSANDRA_CONSISTENCY": "local_quorum"}  # fmt: skip


def victim_of(fault: str, stack: NativeStack, ticks_topic: str) -> str:
    """The node a fault kills: the broker leading the ticks' partition 0, the ZooKeeper leader,
    or Cassandra node 3 (not the seed)."""
    settings = stack.settings
    if fault == BROKER:
        _, partitions = cluster_view.kafka_partitions(settings.bootstrap_servers)
        leader = next(p.leader for p in partitions if (p.topic, p.partition) == (ticks_topic, 0))
        return f"kafka-{leader + 1}"
    if fault == ZOOKEEPER:
        modes = {n: readiness.zookeeper_mode(settings.for_node(n)) for n in settings.node_ids}
        return f"zookeeper-{next(n for n, mode in modes.items() if mode == 'leader')}"
    if fault == CASSANDRA:
        return f"cassandra-{settings.nodes}"
    raise ValueError(fault)


def _hold(seconds: float, stages: Stages) -> None:
    """Let the load run on for the fault schedule's `seconds`, failing early if a stage dies."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        stages.check()
        time.sleep(min(1.0, left))


def _rows(session, target: Target, symbols: list[str], marks: Marks) -> list[tuple[int, int]]:
    from cassandra.util import Date

    select = session.prepare(
        "SELECT toUnixTimestamp(ts) AS ts_ms, WRITETIME(price) AS written_us "  # noqa: S608
        f"FROM {target.keyspace}.ticks WHERE symbol = ? AND day = ?"
    )
    rows: list[tuple[int, int]] = []
    for symbol in symbols:
        for day in range(marks.start_ms // DAY_MS, marks.end_ms // DAY_MS + 1):
            rows += [(r.ts_ms, r.written_us // 1000)
                     for r in session.execute(select, (symbol, Date(day)), timeout=60)]  # fmt: skip
    return rows


def _producer_summary(log: Path) -> str:
    found = re.findall(r"summary (source=.*)", log.read_text(errors="replace"))
    return found[-1] if found else "(no summary: see the log)"


def run_fault(
    bench: FaultBenchSettings, fault: str, stack: NativeStack, stages: Stages, session
) -> FaultResult:
    """Producer and storage carry `bench.rate` ticks/s; the victim is SIGKILLed `before_s` in,
    started again `down_s` later, and the load goes on `after_s` more."""
    target = stages.target
    positions = Positions(target)
    try:
        stages.supervisor.start("storage")
        stages.supervisor.wait_ready("storage", 300)
        start_ms = now_ms()
        stages.start_producer(bench.rate, 10**9, log_name=f"producer-{fault}")
        _hold(bench.before_s, stages)
        victim = victim_of(fault, stack, target.ticks_topic)
        logger.info("%s: killing %s for %.0fs", fault, victim, bench.down_s(fault))
        stack.kill(victim)
        kill_ms = now_ms()
        _hold(bench.down_s(fault), stages)
        stack.start(victim)  # returns once it serves again
        restart_ms = now_ms()
        _hold(bench.after_s, stages)
        stages.supervisor.stop("producer")
        end_ms = now_ms()
        published = positions.produced()
        wait_until(lambda: positions.stored() >= published, _DRAIN_TIMEOUT_S,
                   "storage to store every tick", every_s=1.0, check=stages.check)  # fmt: skip
        marks = Marks(start_ms, kill_ms, restart_ms, end_ms)
        rows = _rows(session, target, stages.symbols, marks)
        summary = _producer_summary(target.logs_dir / f"producer-{fault}.log")
        return FaultResult(fault, victim, bench.down_s(fault), published, len(rows),
                           analyse(rows, marks, published), summary)  # fmt: skip
    finally:
        stages.stop_all()
        positions.close()


def cluster_cpu(stack: NativeStack) -> float:
    return sum(cpu_seconds(pid) for name in stack.instances()
               if (pid := stack.pid(name)) is not None)  # fmt: skip


def run_replication(
    bench: FaultBenchSettings, replication: int, stages: Stages, stack: NativeStack, session
) -> ReplicationResult:
    """The whole pipeline (processor too) offered the rate at this replication, as bench.pipeline
    measures a rate: throughput per stage, tick->row, CPU per tick, and the cluster's CPU."""
    pipeline = replace(BenchSettings(), rates=(bench.rate,), duration_s=bench.replication_s,
                       symbols=bench.symbols, latency_symbols=bench.symbols)  # fmt: skip
    positions = Positions(stages.target)
    try:
        stages.start_readers()
        warm_up(stages, positions, pipeline)
        before = cluster_cpu(stack)
        phase = run_phase(pipeline, stages, positions, session, bench.rate)
        return ReplicationResult(replication, phase, cluster_cpu(stack) - before)
    finally:
        stages.stop_all()
        positions.close()
