"""Kafka and ZooKeeper nodes killed under load (issue #20, faults 1 and 2): the producer goes on
with acks=all, and afterwards the topic holds every tick it published exactly once."""

from __future__ import annotations

import time

import pytest

from common.contract import Tick
from common.polling import wait_until
from stack import readiness
from tests.integration.cluster.conftest import (
    RATE,
    STOP_TIMEOUT_S,
    every_tick_once,
    flowing,
    in_sync,
    leader_of,
    report,
    unwritten_after,
)
from tests.integration.producer.conftest import read_topic

# A cluster starts inside the first test's time, and a slow machine stretches every wait.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

# How long a killed node stays down (the fault length, not a wait for readiness).
DOWN_S = 30


def test_killing_the_broker_that_leads_a_ticks_partition_loses_no_tick(cluster, load):
    running = load()
    bootstrap = cluster.settings.bootstrap_servers
    leader = leader_of(cluster, running.topic)
    victim = f"kafka-{leader + 1}"  # broker ids are node - 1
    cluster.kill(victim)
    killed_at, killed_ms = time.monotonic(), int(time.time() * 1000)
    # The controller notices the broker's ZooKeeper session end and moves leadership to an
    # in-sync replica; the producer's retries carry the ticks across.
    wait_until(
        lambda: leader_of(cluster, running.topic) not in (leader, -1, None), 60, "a new leader"
    )
    flowing(bootstrap, running.topic, RATE * 5, 60)
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - killed_at)))
    cluster.start(victim)  # waits until it is registered again
    wait_until(lambda: in_sync(cluster, running.topic), 180, "the restarted broker back in sync")
    flowing(bootstrap, running.topic, RATE * 2, 60)
    published = running.stop()
    assert published > RATE * DOWN_S
    records = every_tick_once(cluster, running, published)
    # Partition 0 was led by the broker killed: how long it took no tick, from its own stamps.
    gap_s = unwritten_after(records, 0, killed_ms)
    report("broker-kill", partition_unwritten_s=gap_s, published=published)
    assert gap_s < DOWN_S


def _modes(cluster) -> dict[int, str | None]:
    return {
        n: readiness.zookeeper_mode(cluster.settings.for_node(n)) for n in cluster.settings.node_ids
    }


def test_killing_the_zookeeper_leader_elects_another_and_kafka_goes_on(cluster, load):
    running = load()
    bootstrap = cluster.settings.bootstrap_servers
    modes = _modes(cluster)
    assert sorted(m for m in modes.values() if m) == ["follower", "follower", "leader"], modes
    old = next(n for n, mode in modes.items() if mode == "leader")
    cluster.kill(f"zookeeper-{old}")
    killed_at, killed_ms = time.monotonic(), int(time.time() * 1000)

    def new_leader() -> bool:
        modes = _modes(cluster)
        return modes[old] is None and sorted(m for m in modes.values() if m) == [
            "follower", "leader"
        ]  # fmt: skip

    wait_until(new_leader, 60, "a new ZooKeeper leader among the two left", every_s=0.1)
    report("zookeeper-leader-kill", new_leader_s=time.monotonic() - killed_at)
    flowing(bootstrap, running.topic, RATE * 5, 60)
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - killed_at)))
    cluster.start(f"zookeeper-{old}")
    # It rejoins as a follower: the ensemble keeps the leader it elected.
    wait_until(lambda: _modes(cluster)[old] == "follower", 120, "the old leader back, following")
    assert in_sync(cluster, running.topic)
    flowing(bootstrap, running.topic, RATE * 2, 60)
    published = running.stop()
    records = every_tick_once(cluster, running, published)
    gaps = [unwritten_after(records, p, killed_ms) for p in range(3)]
    report("zookeeper-leader-kill", longest_partition_unwritten_s=max(gaps))


def test_with_two_brokers_down_the_producer_counts_every_tick_it_could_not_deliver(cluster, load):
    """Beyond what the cluster survives: one broker left is fewer than min.insync.replicas, so
    nothing is acknowledged. The producer keeps fetching and its client keeps retrying; stopped
    then, it gives up what it holds, counts each tick as delivery_failed and exits 1 (no
    traceback), and every tick it did not count is in the topic once the brokers are back."""
    running = load()
    bootstrap = cluster.settings.bootstrap_servers
    survivor = leader_of(cluster, running.topic)
    victims = [f"kafka-{n}" for n in cluster.settings.node_ids if n != survivor + 1]
    for victim in victims:
        cluster.kill(victim)
    killed_at = time.monotonic()
    time.sleep(max(0.0, 10 - (time.monotonic() - killed_at)))  # the fault's length
    published, failed, code, stderr = running.stop_counting()
    report("two-brokers-down", published=published, delivery_failed=failed,
           producer_stop_s=running.stop_s)  # fmt: skip
    assert code == 1 and failed > 0, stderr[-3000:]
    # Its stop timeout bounds the stop as a whole, however many batches were held (giving them
    # up takes moments): it did not wait that long per batch, nor need its last-word deadline.
    assert running.stop_s < 2 * STOP_TIMEOUT_S, (running.stop_s, stderr[-3000:])
    assert "Timeout (" not in stderr, stderr[-3000:]
    # It ended by itself: nothing escaped after its summary (the client's own logs may carry
    # tracebacks of connections it lost on the way).
    after_summary = stderr.rsplit("summary source=", 1)[-1]
    assert "Traceback" not in after_summary, after_summary[-3000:]
    for victim in victims:
        cluster.start(victim)
    wait_until(lambda: in_sync(cluster, running.topic), 180, "both brokers back in sync")
    records = read_topic(bootstrap, running.topic, published - failed, 120)
    got = [Tick.from_json(r.value, now=running.start_ms) for r in records]
    identities = [(t.symbol, t.ts, t.seq) for t in got]
    assert len(set(identities)) == len(identities), "a tick stored twice"
    assert set(got) <= set(running.expected(published))
    assert len(got) >= published - failed, (len(got), published, failed)
