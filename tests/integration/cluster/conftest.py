"""A real three-node cluster (python -m stack up --nodes 3) for the fault tests: a ZooKeeper
ensemble, three Kafka brokers and a Cassandra ring, node n on 127.0.0.n, on free ports.

One cluster serves the module's tests; each test leaves every node running and in sync (it
restarts what it killed and waits for the ISR and the ring), so the next one starts whole. At the
end it is killed: a graceful stop of its nine JVMs took about 60 s in CI, for data in a temporary
directory that nothing reads again.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.contract import Tick
from common.polling import wait_until
from common.topics import ensure_topics
from producer import simulated_ticks
from stack import cluster_view
from stack.native import NativeStack
from stack.settings import StackSettings

ROOT = Path(__file__).resolve().parents[3]
NODES = 3
# Fault tests run under load: at least 1,000 ticks/s (the floor).
RATE = 1_200
SYMBOLS = [f"S{i:02d}" for i in range(12)]
# The load's STOP_TIMEOUT: a healthy cluster takes what it holds in well under a second, and a
# test that takes brokers away waits this long for the producer to give up.
STOP_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    settings = StackSettings.on_free_ports(
        tmp_path_factory.mktemp("cluster"),
        nodes=NODES,
        zookeeper_heap="128m",
        kafka_heap="384m",
        cassandra_heap="768m",
        # Nine JVMs start on the machine's cores at once, beside the suite's own stack.
        start_timeout_s=900.0,
    )
    stack = NativeStack(settings, tie_to_parent=True)
    stack.up()
    try:
        yield stack
    finally:
        for name in stack.instances():
            stack.kill(name)


def in_sync(stack: NativeStack, topic: str) -> bool:
    """Every partition of `topic` has all its replicas in sync and a leader."""
    try:
        _, partitions = cluster_view.kafka_partitions(stack.settings.bootstrap_servers)
    except RuntimeError:  # no broker answered this time
        return False
    mine = [p for p in partitions if p.topic == topic]
    return bool(mine) and all(
        p.leader >= 0 and len(p.isr) == len(p.replicas) == NODES for p in mine
    )


def leader_of(stack: NativeStack, topic: str, partition: int = 0) -> int | None:
    """The partition's leader (-1: none), or None when no broker answered this time."""
    try:
        _, partitions = cluster_view.kafka_partitions(stack.settings.bootstrap_servers)
    except RuntimeError:
        return None
    return next(p.leader for p in partitions if (p.topic, p.partition) == (topic, partition))


def end_offsets(bootstrap: str, topic: str) -> int:
    """How many records the topic holds; -1 when the cluster did not answer this time."""
    try:
        return sum(cluster_view.partition_ends(bootstrap, topic).values())
    except RuntimeError:
        return -1


def report(fault: str, **figures: object) -> None:
    """A fault's measured figures, one line in the test's output (pytest -s, or -rA on failure)
    and in the log: README's cluster section quotes them."""
    line = " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in
                    figures.items())  # fmt: skip
    print(f"FAULT {fault}: {line}")
    logging.getLogger("cluster-faults").info("FAULT %s: %s", fault, line)


@dataclass
class Load:
    """A real producer (python -m producer) publishing simulated ticks to the cluster."""

    topic: str
    start_ms: int
    proc: subprocess.Popen
    # Its stderr: a file, not a pipe, which a chatty client could fill (64 KiB) and block on
    # before the test reads it.
    log: Path
    stop_s: float = 0.0

    def stop(self) -> int:
        """SIGTERM (the producer flushes what it fetched), then how many ticks it published;
        asserts it exited cleanly with every tick acknowledged."""
        published, failed, code, stderr = self.stop_counting()
        assert code == 0 and failed == 0, stderr[-3000:]
        return published

    def stop_counting(self) -> tuple[int, int, int, str]:
        """SIGTERM, then (published, delivery_failed, exit code, stderr) from its summary;
        self.stop_s is how long it took to exit."""
        self.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        self.proc.wait(timeout=300)
        self.stop_s = time.monotonic() - signalled
        stderr = self.log.read_text()
        summary = re.search(
            r"summary source=simulated fetched=(\d+) published=(\d+).*delivery_failed=(\d+)",
            stderr,
        )
        assert summary, stderr[-3000:]
        fetched, published, failed = map(int, summary.groups())
        assert fetched == published, summary[0]
        return published, failed, self.proc.returncode, stderr

    def expected(self, count: int) -> list[Tick]:
        return sorted(simulated_ticks(7, SYMBOLS, count, self.start_ms, rate=RATE), key=_order)


def _order(tick: Tick) -> tuple:
    return (tick.ts, tick.symbol, tick.seq)


@pytest.fixture
def load(cluster: NativeStack, tmp_path: Path) -> Iterator[callable]:
    """Starts the load on a topic of the test's own (replication 3 by the brokers' default)."""
    started: list[Load] = []

    def start() -> Load:
        topic = f"cluster_ticks_{uuid.uuid4().hex[:8]}"
        bootstrap = cluster.settings.bootstrap_servers
        _create_stamped(bootstrap, topic)
        ensure_topics(bootstrap, [f"{topic}_dl"], partitions=3)
        wait_until(lambda: in_sync(cluster, topic), 120, f"{topic} in sync on every broker")
        start_ms = 1_760_000_000_000
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, LOG_LEVEL="INFO")
        log = tmp_path / f"producer-{topic}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "producer", "--symbols", ",".join(SYMBOLS),
                 "--ticks-topic", topic, "--dead-letter-topic", f"{topic}_dl", "--sim-seed", "7",
                 "--sim-rate", str(RATE), "--sim-start", str(start_ms),
                 "--stop-timeout", f"{STOP_TIMEOUT_S}s"],
                cwd=ROOT, env=env, stderr=out, text=True,
            )  # fmt: skip
        running = Load(topic, start_ms, proc, log)
        started.append(running)
        wait_until(
            lambda: end_offsets(bootstrap, topic) >= 2 * RATE, 120, "ticks flowing", every_s=0.5
        )
        return running

    yield start
    for running in started:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait()


def flowing(bootstrap: str, topic: str, more: int, within_s: float) -> None:
    """Asserts `more` further ticks reach the topic within `within_s`: the cluster goes on."""
    before = wait_until(
        lambda: (n := end_offsets(bootstrap, topic)) >= 0 and n, within_s, "the topic's size"
    )
    wait_until(
        lambda: end_offsets(bootstrap, topic) >= before + more,
        within_s,
        f"{more} more ticks on {topic}",
        every_s=0.5,
    )


def _create_stamped(bootstrap: str, topic: str) -> None:
    """The test's ticks topic, replicated by the brokers' default, each record stamped with the
    time its leader appended it: the data itself then shows how long a partition took no
    writes, whatever the test's own clients saw meanwhile."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        stamped = {"message.timestamp.type": "LogAppendTime"}
        admin.create_topics([NewTopic(topic, 3, -1, topic_configs=stamped)])
    finally:
        admin.close()


def appended(bootstrap: str, topic: str, expected: int) -> list[tuple[int, int, bytes]]:
    """Every record of the topic as (partition, append time ms, value)."""
    from kafka import KafkaConsumer

    from common.polling import poll_paced

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    out: list[tuple[int, int, bytes]] = []

    def read(timeout_ms: int) -> int:
        for batch in poll_paced(consumer, timeout_ms).values():
            out.extend((r.partition, r.timestamp, r.value) for r in batch)
        return len(out)

    try:
        wait_until(lambda: read(500) >= expected, 180, f"{expected} records of {topic}")
        read(1000)  # anything beyond: a copy, which the callers' checks catch
    finally:
        consumer.close()
    return out


def unwritten_after(records: list[tuple[int, int, bytes]], partition: int, at_ms: int) -> float:
    """Seconds from `at_ms` to the first record the partition's leader appended after it."""
    after = [ts for p, ts, _ in records if p == partition and ts > at_ms]
    return (min(after) - at_ms) / 1000 if after else float("inf")


def every_tick_once(
    stack: NativeStack, running: Load, published: int
) -> list[tuple[int, int, bytes]]:
    """The topic holds exactly the ticks the producer published: none lost, none twice. Returns
    the records for the callers' timing."""
    records = appended(stack.settings.bootstrap_servers, running.topic, published)
    got = sorted((Tick.from_json(v, now=running.start_ms) for _, _, v in records), key=_order)
    expected = running.expected(published)
    assert len(got) == len(expected), (len(got), len(expected))
    assert got == expected
    return records
