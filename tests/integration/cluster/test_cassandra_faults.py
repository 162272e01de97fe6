"""A Cassandra node killed under load (issue #20, fault 3): storage goes on writing at
LOCAL_QUORUM, and once the node is back, with no repair run, that node alone holds every tick,
the ones written while it was down too (hinted handoff)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import date, datetime, timezone

import pytest

from common.polling import wait_until
from stack import cluster_view
from tests.integration.cluster.conftest import ROOT, flowing, report

# A cluster starts inside the first test's time, and a slow machine stretches every wait.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

DOWN_S = 60
VICTIM = 3


def _ring(cluster) -> dict[str, str]:
    try:
        return cluster_view.cassandra_ring(cluster.settings)
    except RuntimeError:
        return {}


def _committed(bootstrap: str, group: str, topic: str) -> int:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    except (KafkaError, OSError):
        return -1
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except (KafkaError, OSError):
        return -1
    finally:
        admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)


def _watch_commits(bootstrap: str, group: str, topic: str, since: float) -> tuple[int, float]:
    """Storage's committed offsets until DOWN_S after `since`: how many ticks were stored, and
    the longest gap between two commits that moved forward."""
    first = last = wait_until(lambda: max(_committed(bootstrap, group, topic), 0), 30, "offsets")
    moved_at, longest = time.monotonic(), 0.0
    while time.monotonic() - since < DOWN_S:
        now_committed = _committed(bootstrap, group, topic)
        now = time.monotonic()
        if now_committed > last:
            longest = max(longest, now - moved_at)
            last, moved_at = now_committed, now
        time.sleep(0.25)
    return last - first, max(longest, time.monotonic() - moved_at)


def _node_alone(cluster, node: int):
    """A session that talks to `node` only, reading at ONE: what that replica itself holds
    (no other replica is asked, so nothing is repaired on the way)."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    host = cluster.settings.node_host(node)
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([host]),
        consistency_level=ConsistencyLevel.ONE,
        request_timeout=30,
    )
    alone = Cluster(
        [host],
        port=cluster.settings.cassandra_port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    return alone, alone.connect()


def _stored(session, keyspace: str, symbols, day: date) -> dict[str, set]:
    query = session.prepare(f"SELECT ts, seq FROM {keyspace}.ticks WHERE symbol = ? AND day = ?")  # noqa: S608
    found = defaultdict(set)
    for symbol in symbols:
        for row in session.execute(query, (symbol, day)):
            ms = int(row.ts.replace(tzinfo=timezone.utc).timestamp() * 1000)
            found[symbol].add((ms, row.seq))
    return found


def test_a_cassandra_node_down_for_a_minute_gets_every_row_back_by_hints(cluster, load, tmp_path):
    settings = cluster.settings
    bootstrap = settings.bootstrap_servers
    running = load()
    keyspace = f"cluster_{uuid.uuid4().hex[:8]}"
    group = f"storage-{keyspace}"
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TICKS_TOPIC=running.topic,
        AGGREGATES_TOPIC=f"{running.topic}_aggs",
        DEAD_LETTER_TOPIC=f"{running.topic}_dl",
        CONSUMER_GROUP=group,
        CASSANDRA_HOSTS=",".join(settings.cassandra_hosts),
        CASSANDRA_PORT=str(settings.cassandra_port),
        CASSANDRA_KEYSPACE=keyspace,
        CASSANDRA_REPLICATION="NetworkTopologyStrategy:datacenter1=3",
        CASSANDRA_CONSISTENCY="local_quorum",
        LOG_LEVEL="INFO",
    )
    log = tmp_path / "storage.log"  # a file: a pipe read only at the end could fill and block
    with log.open("w") as out:
        storage = subprocess.Popen(
            [sys.executable, "-m", "storage"], cwd=ROOT, env=env, stderr=out, text=True
        )
    try:
        wait_until(lambda: _committed(bootstrap, group, running.topic) > 0, 180, "rows stored")
        cluster.kill(f"cassandra-{VICTIM}")
        killed_at = time.monotonic()
        # Writes go on at LOCAL_QUORUM (2 of 3): storage commits further offsets all along.
        # The longest time no offset was committed is how long writes stalled.
        stored_during, stall_s = _watch_commits(bootstrap, group, running.topic, killed_at)
        victim = settings.node_host(VICTIM)
        assert _ring(cluster).get(victim) == "DN", _ring(cluster)  # gossip saw it down
        report(
            "cassandra-node-kill",
            ticks_stored_while_down=stored_during,
            longest_commit_gap_s=stall_s,
        )
        assert stored_during > 1_000 * (DOWN_S // 2)
        assert stall_s < DOWN_S / 2
        cluster.start(f"cassandra-{VICTIM}")
        wait_until(
            lambda: set(_ring(cluster).values()) == {"UN"} and len(_ring(cluster)) == 3,
            180,
            "every node up and normal",
        )
        flowing(bootstrap, running.topic, 2_000, 60)
        published = running.stop()
        wait_until(
            lambda: _committed(bootstrap, group, running.topic) >= published,
            300,
            "storage to store every tick",
            every_s=1,
        )
    finally:
        storage.send_signal(signal.SIGTERM)
        storage.wait(timeout=120)
    assert storage.returncode == 0, log.read_text()[-3000:]

    expected = defaultdict(set)
    for tick in running.expected(published):
        expected[tick.symbol].add((tick.ts, tick.seq))
    day = datetime.fromtimestamp(running.start_ms / 1000, timezone.utc).date()
    assert {t[0] // 86_400_000 for ticks in expected.values() for t in ticks} == {
        running.start_ms // 86_400_000
    }
    alone, session = _node_alone(cluster, VICTIM)
    try:
        # Hints are replayed once the others see the node up (every 10 s, throttled): poll.
        def complete() -> bool:
            return _stored(session, keyspace, expected, day) == expected

        wait_until(complete, 300, f"node {VICTIM} alone to hold every tick", every_s=5)
    finally:
        alone.shutdown()
    assert sum(map(len, expected.values())) == published > 1_000 * DOWN_S
