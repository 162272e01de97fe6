"""A real three-node cluster (python -m stack up --nodes 3) for the fault tests: a ZooKeeper
ensemble, three Kafka brokers and a Cassandra ring, node n on 127.0.0.n, on free ports.

One cluster serves the module's tests; each test leaves every node running and in sync (it
restarts what it killed and waits for the ISR and the ring), so the next one starts whole.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
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
from tests.integration.producer.conftest import read_topic

ROOT = Path(__file__).resolve().parents[3]
NODES = 3
# Fault tests run under load: at least 1,000 ticks/s (the floor).
RATE = 1_200
SYMBOLS = [f"S{i:02d}" for i in range(12)]


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
        stack.down()


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
    """How many records the topic holds (the sum of its partitions' end offsets); -1 when the
    cluster did not answer this time (a leader moving, a broker down)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    except (KafkaError, OSError):
        return -1
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values()) if parts else 0
    except (KafkaError, OSError):
        return -1
    finally:
        consumer.close()


@dataclass
class Load:
    """A real producer (python -m producer) publishing simulated ticks to the cluster."""

    topic: str
    start_ms: int
    proc: subprocess.Popen

    def stop(self) -> int:
        """SIGTERM (the producer flushes what it fetched), then how many ticks it published;
        asserts it exited cleanly with every tick acknowledged."""
        self.proc.send_signal(signal.SIGTERM)
        _, stderr = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, stderr[-3000:]
        summary = re.search(
            r"summary source=simulated fetched=(\d+) published=(\d+).*delivery_failed=(\d+)",
            stderr,
        )
        assert summary, stderr[-3000:]
        fetched, published, failed = map(int, summary.groups())
        assert fetched == published and failed == 0, summary[0]
        return published

    def expected(self, count: int) -> list[Tick]:
        return sorted(simulated_ticks(7, SYMBOLS, count, self.start_ms, rate=RATE), key=_order)


def _order(tick: Tick) -> tuple:
    return (tick.ts, tick.symbol, tick.seq)


@pytest.fixture
def load(cluster: NativeStack) -> Iterator[callable]:
    """Starts the load on a topic of the test's own (replication 3 by the brokers' default)."""
    started: list[Load] = []

    def start() -> Load:
        topic = f"cluster_ticks_{uuid.uuid4().hex[:8]}"
        bootstrap = cluster.settings.bootstrap_servers
        ensure_topics(bootstrap, [topic, f"{topic}_dl"], partitions=3)
        wait_until(lambda: in_sync(cluster, topic), 120, f"{topic} in sync on every broker")
        start_ms = 1_760_000_000_000
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, LOG_LEVEL="INFO")
        proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "--symbols", ",".join(SYMBOLS),
             "--ticks-topic", topic, "--dead-letter-topic", f"{topic}_dl", "--sim-seed", "7",
             "--sim-rate", str(RATE), "--sim-start", str(start_ms)],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        running = Load(topic, start_ms, proc)
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


def every_tick_once(stack: NativeStack, running: Load, published: int) -> None:
    """The topic holds exactly the ticks the producer published: none lost, none twice."""
    records = read_topic(stack.settings.bootstrap_servers, running.topic, published, 180)
    got = sorted((Tick.from_json(r.value, now=running.start_ms) for r in records), key=_order)
    expected = running.expected(published)
    assert len(got) == len(expected), (len(got), len(expected))
    assert got == expected
