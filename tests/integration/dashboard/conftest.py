"""The dashboard as the user runs it (`python -m dashboard`, a subprocess on a free port), on the
test's own topics and keyspace, with storage filling Cassandra from Kafka.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.polling import wait_until
from stack.settings import free_port
from stack.supervisor import Supervisor
from storage.settings import StorageSettings

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Answer:
    status: int
    body: dict
    text: str


def get(url: str, timeout: float = 10.0) -> Answer:
    """GET a URL; an HTTP error status is an answer too, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    return Answer(status, body if isinstance(body, dict) else {"value": body}, text)


@dataclass
class RunningDashboard:
    url: str
    env: dict[str, str]
    stages: Supervisor

    def get(self, path: str) -> Answer:
        return get(self.url.rstrip("/") + path)

    def log(self) -> str:
        return self.stages.log_text("dashboard")


def dashboard_env(services, topics: dict[str, str], keyspace: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": services.bootstrap_servers,
        "TICKS_TOPIC": topics["ticks"],
        "AGGREGATES_TOPIC": topics["aggregates"],
        "DEAD_LETTER_TOPIC": topics["dead_letters"],
        "BARS_TOPIC": topics["bars"],
        "CASSANDRA_HOSTS": ",".join(services.cassandra_hosts),
        "CASSANDRA_PORT": str(services.cassandra_port),
        "CASSANDRA_KEYSPACE": keyspace,
        "DASHBOARD_PORT": str(port),
        "DASHBOARD_CONSUMER_GROUP": f"pytest-dashboard-{uuid.uuid4().hex[:8]}",
        "CONSUMER_GROUP": f"pytest-storage-{uuid.uuid4().hex[:8]}",
        "WINDOWS": "10s,1m,5m",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def topics(make_topic) -> dict[str, str]:
    return {
        "ticks": make_topic(partitions=3, suffix="_t"),
        "aggregates": make_topic(partitions=2, suffix="_a"),
        "dead_letters": make_topic(partitions=1, suffix="_d"),
        "bars": make_topic(partitions=2, suffix="_b"),
    }


@pytest.fixture
def schema_keyspace(make_keyspace, services) -> str:
    """A keyspace of this test's own with the pipeline's tables (storage's init-schema)."""
    keyspace = make_keyspace()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CASSANDRA_HOSTS": ",".join(services.cassandra_hosts),
        "CASSANDRA_PORT": str(services.cassandra_port),
        "CASSANDRA_KEYSPACE": keyspace,
    }
    done = subprocess.run(
        [sys.executable, "-m", "storage", "init-schema"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return keyspace


@pytest.fixture
def storage_settings_for(services, topics, schema_keyspace) -> StorageSettings:
    return StorageSettings(
        bootstrap_servers=services.bootstrap_servers,
        ticks_topic=topics["ticks"],
        aggregates_topic=topics["aggregates"],
        dead_letter_topic=topics["dead_letters"],
        bars_topic=topics["bars"],
        consumer_group=f"pytest-storage-{uuid.uuid4().hex[:8]}",
        cassandra_hosts=tuple(services.cassandra_hosts),
        cassandra_port=services.cassandra_port,
        keyspace=schema_keyspace,
        batch_size=500,
    )


def start_dashboard(stages: Supervisor, env: dict[str, str]) -> RunningDashboard:
    url = f"http://127.0.0.1:{env['DASHBOARD_PORT']}/"
    stages.start("dashboard")
    running = RunningDashboard(url, env, stages)

    def ready() -> bool:
        try:
            return running.get("/api/health").status == 200
        except OSError:
            return False

    wait_until(ready, 60, "the dashboard to answer", check=stages.check, describe=stages.tails)
    return running


@pytest.fixture
def dashboard(services, topics, schema_keyspace, tmp_path) -> Iterator[RunningDashboard]:
    """`python -m dashboard` on a free port, answering once Cassandra is connected."""
    env = dashboard_env(services, topics, schema_keyspace, free_port())
    stages = Supervisor(tmp_path / "logs", env, cwd=REPO, grace_s={"dashboard": 15.0})
    try:
        running = start_dashboard(stages, env)
        wait_until(
            lambda: running.get("/api/latest").status == 200,
            60,
            "the dashboard to connect to Cassandra",
            check=stages.check,
            describe=stages.tails,
        )
        yield running
    finally:
        codes = stages.stop_all()
    assert codes.get("dashboard") == 0, f"the dashboard did not stop cleanly:\n{stages.tails()}"


def live_tick_arrives(url: str, bootstrap: str, ticks_topic: str, symbol: str) -> dict:
    """Open /api/live for `symbol` and keep publishing new ticks of it (price above 200, volume
    7) until one comes through the stream; that event."""
    from common.contract import Tick, now_ms
    from tests.integration.storage.conftest import produce

    with urllib.request.urlopen(f"{url}api/live?symbol={symbol}", timeout=30) as stream:  # noqa: S310 - loopback
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.readline() == b"retry: 2000\n"
        assert stream.readline() == b"event: hello\n"
        seq = 0
        seen: list[dict] = []

        def arrived() -> bool:
            # The dashboard's group reads from the end once it has joined: keep sending new
            # ticks until one comes through.
            nonlocal seq
            seq += 1
            produce(bootstrap, ticks_topic,
                    [Tick(symbol, 200.0 + seq, 7, now_ms(), "pytest", seq).to_json()])  # fmt: skip
            line = stream.readline()
            while line and not line.startswith(b'data: {"latest"'):
                line = stream.readline()
            seen.append(json.loads(line[len(b"data: ") :]))
            return any(e.get("symbol") == symbol and e.get("ticks") for e in seen)

        wait_until(arrived, 60, f"a live tick of {symbol}", every_s=0.1)
    return next(e for e in seen if e.get("ticks"))
