"""The dashboard and storage started before their topics exist (issue #24): at rest they wait,
they do not spin (CPU read from /proc over 10 s, well under 0.1 cores each), and once ticks
flow the live stream carries them."""

from __future__ import annotations

import time
import uuid

from bench.cpu import cpu_seconds
from stack.settings import free_port
from stack.supervisor import Supervisor
from tests.conftest import _delete_topics

from .conftest import REPO, dashboard_env, live_tick_arrives, start_dashboard

# The goal for a Python stage at rest, with a wide margin over what one uses (~0.02).
MAX_CORES_AT_REST = 0.1
MEASURE_S = 10.0


def _topics_exist(bootstrap: str, names: list[str]) -> bool:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return set(names) <= consumer.topics()
    finally:
        consumer.close()


def test_started_before_their_topics_they_rest_then_stream(services, schema_keyspace, tmp_path):
    tag = uuid.uuid4().hex[:8]
    topics = {
        kind: f"pytest_at_rest_{tag}_{kind}" for kind in ("ticks", "aggregates", "dead", "bars")
    }
    topics["dead_letters"] = topics.pop("dead")
    assert not _topics_exist(services.bootstrap_servers, [topics["ticks"]])
    env = dashboard_env(services, topics, schema_keyspace, free_port())
    stages = Supervisor(tmp_path / "logs", env, cwd=REPO,
                        grace_s={"dashboard": 15.0, "storage": 30.0})  # fmt: skip
    try:
        dashboard = start_dashboard(stages, env)
        stages.start("storage")
        stages.wait_ready("storage", 120)

        # At rest: nothing is published. The window is a measurement, not a wait for anything.
        pids = {name: stages.procs[name].pid for name in ("dashboard", "storage")}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        time.sleep(MEASURE_S)
        took = time.monotonic() - started
        cores = {name: (cpu_seconds(pid) - before[name]) / took for name, pid in pids.items()}
        stages.check()
        assert all(c < MAX_CORES_AT_REST for c in cores.values()), cores

        event = live_tick_arrives(
            dashboard.url, services.bootstrap_servers, topics["ticks"], "REST"
        )
        assert event["ticks"][-1][1] > 200
    finally:
        codes = stages.stop_all()
        _delete_topics(services.bootstrap_servers, list(topics.values()))
    assert codes == {"dashboard": 0, "storage": 0}, stages.tails()
