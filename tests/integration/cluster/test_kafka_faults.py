"""Kafka and ZooKeeper nodes killed under load (issue #20, faults 1 and 2): the producer goes on
with acks=all, and afterwards the topic holds every tick it published exactly once."""

from __future__ import annotations

import time

from common.polling import wait_until
from stack import readiness
from tests.integration.cluster.conftest import (
    RATE,
    every_tick_once,
    flowing,
    in_sync,
    leader_of,
)

# How long a killed node stays down (the fault length, not a wait for readiness).
DOWN_S = 30


def test_killing_the_broker_that_leads_a_ticks_partition_loses_no_tick(cluster, load):
    running = load()
    bootstrap = cluster.settings.bootstrap_servers
    leader = leader_of(cluster, running.topic)
    victim = f"kafka-{leader + 1}"  # broker ids are node - 1
    cluster.kill(victim)
    killed_at = time.monotonic()
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
    every_tick_once(cluster, running, published)


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
    killed_at = time.monotonic()

    def new_leader() -> bool:
        modes = _modes(cluster)
        return modes[old] is None and sorted(m for m in modes.values() if m) == [
            "follower", "leader"
        ]  # fmt: skip

    wait_until(new_leader, 60, "a new ZooKeeper leader among the two left")
    flowing(bootstrap, running.topic, RATE * 5, 60)
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - killed_at)))
    cluster.start(f"zookeeper-{old}")
    # It rejoins as a follower: the ensemble keeps the leader it elected.
    wait_until(lambda: _modes(cluster)[old] == "follower", 120, "the old leader back, following")
    assert in_sync(cluster, running.topic)
    flowing(bootstrap, running.topic, RATE * 2, 60)
    published = running.stop()
    every_tick_once(cluster, running, published)
