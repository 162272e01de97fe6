"""`make up` for real: the compose stack a user starts, built from this checkout.

Runs wherever a Docker engine with the compose plugin answers (.ci/run starts one with
scripts/docker-engine.sh and sets STOCK_SYSTEM_REQUIRE_DOCKER=1, so there it never skips);
skipped, saying why, where none does. The stack runs under its own
project name and host ports, so it collides neither with a user's `make up` nor with the native
stacks of the other tests. The tests run in file order and share the one stack:
rows in every table (Spark inside the processor) -> storage restart and processor kill under
load lose no tick -> `make down` + `make up SPARK=cluster` resumes from the volumes, the same
checkpoint now run by executors on a Spark worker -> `make clean` leaves nothing behind.
"""

from __future__ import annotations

import calendar
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.contract import Tick
from stack.settings import free_port
from tests.integration.compose.project import ROOT, Stack, poll_for, require_engine

# Its own project per run: two checkouts (or helpers) testing at once do not share containers.
PROJECT = f"stock-system-test-{uuid.uuid4().hex[:8]}"
SYMBOLS = ("AAPL", "MSFT")
TEN_SECONDS = 10_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require_engine()
    kafka_port, cassandra_port, ui_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": PROJECT,
        "KAFKA_HOST_PORT": str(kafka_port),
        "CASSANDRA_HOST_PORT": str(cassandra_port),
        "SPARK_UI_HOST_PORT": str(ui_port),
        "SYMBOLS": ",".join(SYMBOLS),
        "SOURCE": "simulated",
        "SIM_RATE": "40",
    }
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "CASSANDRA_HOSTS", "CASSANDRA_PORT"):
        env.pop(name, None)
    found = Stack(env, f"127.0.0.1:{kafka_port}", cassandra_port, f"http://127.0.0.1:{ui_port}")
    try:
        yield found
    finally:
        subprocess.run(
            ["make", "-C", str(ROOT), "clean"], env=env, capture_output=True, timeout=300
        )


# --- reading what the pipeline wrote -----------------------------------------------------------


def _kafka_ticks(bootstrap: str) -> Counter:
    """Every tick in the ticks topic, as (symbol, day, ts_ms, seq) -> copies."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition("ticks", p) for p in consumer.partitions_for_topic("ticks")]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        ticks: Counter = Counter()
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=2000, max_records=5000).values():
                for record in records:
                    tick = Tick.from_json(record.value)
                    day = time.strftime("%Y-%m-%d", time.gmtime(tick.ts / 1000))
                    ticks[(tick.symbol, day, tick.ts, tick.seq)] += 1
        return ticks
    finally:
        consumer.close()


def _ms(value: Any) -> int:
    return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000


def _stored_ticks(session: Any, days: set[str]) -> set[tuple[str, str, int, int]]:
    query = session.prepare("SELECT ts, seq FROM stocks.ticks WHERE symbol = ? AND day = ?")
    return {
        (symbol, day, _ms(row.ts), row.seq)
        for symbol in SYMBOLS
        for day in days
        for row in session.execute(query, (symbol, day), timeout=60)
    }


def _ten_second_counts(session: Any, days: set[str]) -> Counter:
    query = session.prepare(
        "SELECT count FROM stocks.aggregates WHERE symbol = ? AND window_ms = ? AND day = ?"
    )
    counts: Counter = Counter()
    for symbol in SYMBOLS:
        for day in days:
            for row in session.execute(query, (symbol, TEN_SECONDS, day), timeout=60):
                counts[symbol] += row.count
    return counts


def _all_tables_have_both_symbols(session: Any) -> dict[str, set[str]]:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    seen = {
        "latest_prices": {
            r.symbol for r in session.execute("SELECT symbol FROM stocks.latest_prices")
        },
        "ticks": set(),
        "aggregates": set(),
    }
    for symbol in SYMBOLS:
        ticks = session.execute(
            "SELECT symbol FROM stocks.ticks WHERE symbol = %s AND day = %s LIMIT 1", (symbol, day)
        )
        seen["ticks"] |= {r.symbol for r in ticks}
        aggregates = session.execute(
            "SELECT symbol FROM stocks.aggregates WHERE symbol = %s AND window_ms = %s "
            "AND day = %s LIMIT 1",
            (symbol, TEN_SECONDS, day),
        )
        seen["aggregates"] |= {r.symbol for r in aggregates}
    return seen if all(set(SYMBOLS) <= s for s in seen.values()) else {}


# --- the tests, in order -----------------------------------------------------------------------


def test_make_up_brings_rows_for_both_symbols_into_every_table(stack: Stack):
    started = time.monotonic()
    out = stack.make("up")
    up_s = time.monotonic() - started
    assert f"127.0.0.1:{stack.cassandra_port}" in out  # where to look, with this run's ports
    for service in ("zookeeper", "kafka", "cassandra", "dashboard"):
        state = stack.compose("ps", "--format", "{{.Health}}", service).strip()
        assert state == "healthy", f"{service} is {state!r} after make up"
    # Spark runs inside the processor unless SPARK=cluster asks for a master and workers.
    running = set(stack.compose("ps", "-a", "--services").split())
    assert "processor" in running and not {"spark-master", "spark-worker"} & running, running

    cluster, session = stack.cassandra()
    try:
        poll_for("rows for both symbols in all three tables (host driver)",
              lambda: _all_tables_have_both_symbols(session), timeout_s=300)  # fmt: skip
    finally:
        cluster.shutdown()
    print(f"make up: {up_s:.0f}s; first rows in all tables {time.monotonic() - started:.0f}s")

    # The same rows through cqlsh inside the Cassandra container (asked until a deadline, as the
    # driver is: cqlsh's own connection gives up after 5 s).
    def through_cqlsh() -> str:
        query = "SELECT symbol, price FROM stocks.latest_prices"
        out = stack.compose("exec", "-T", "cassandra", "cqlsh", "-e", query)
        assert all(symbol in out for symbol in SYMBOLS), out
        return out

    poll_for("both symbols through cqlsh", through_cqlsh, timeout_s=180)


def _inspect(container: str, field: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{" + field + "}}", container],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _crash(stack: Stack, service: str) -> None:
    """SIGKILL the service's main process, as a crash would, and see Docker restart it."""
    container = stack.container(service)
    restarts = int(_inspect(container, ".RestartCount"))
    pid = int(_inspect(container, ".State.Pid"))
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
        # restart: unless-stopped brings a crashed service back by itself.
        poll_for(f"{service} restarted by Docker after the crash",
              lambda: int(_inspect(container, ".RestartCount")) > restarts
              and _inspect(container, ".State.Running") == "true", timeout_s=120)  # fmt: skip
    else:  # the engine runs on another machine: crash it through the engine, start it again
        subprocess.run(["docker", "kill", "-s", "KILL", container], check=True)
        stack.compose("start", service)


def test_storage_restart_and_processor_kill_under_load_lose_no_tick(stack: Stack):
    cluster, session = stack.cassandra()
    try:
        stored_before = len(_stored_ticks(session, {time.strftime("%Y-%m-%d", time.gmtime())}))
        stack.compose("restart", "storage")
        _crash(stack, "processor")
        # Ticks keep flowing meanwhile; the producer then stops so that the topic holds a fixed
        # set to compare against, once the restarted consumers have caught up.
        poll_for("new ticks stored after the storage restart",
              lambda: len(_stored_ticks(session, {time.strftime("%Y-%m-%d", time.gmtime())}))
              > stored_before, timeout_s=120)  # fmt: skip
        stack.compose("stop", "producer")

        in_kafka = _kafka_ticks(stack.kafka)
        assert in_kafka, "no ticks in Kafka"
        duplicates = {k: n for k, n in in_kafka.items() if n > 1}
        assert not duplicates, f"the producer wrote ticks twice: {list(duplicates)[:5]}"
        days = {key[1] for key in in_kafka}
        per_symbol = Counter(key[0] for key in in_kafka)
        assert set(per_symbol) == set(SYMBOLS), per_symbol

        def every_tick_stored():
            missing = set(in_kafka) - _stored_ticks(session, days)
            return True if not missing else None

        poll_for("every tick in Kafka stored in Cassandra (storage restarted)",
              every_tick_stored, timeout_s=240, every_s=5)  # fmt: skip
        # Every tick counted exactly once in the 10 s windows, across the processor's crash.
        poll_for("10 s aggregates counting every tick exactly once (processor killed)",
              lambda: _ten_second_counts(session, days) == per_symbol,
              timeout_s=300, every_s=5)  # fmt: skip
    finally:
        cluster.shutdown()


def test_make_down_then_make_up_resumes_from_the_volumes(stack: Stack):
    cluster, session = stack.cassandra()
    try:
        days = {time.strftime("%Y-%m-%d", time.gmtime())}
        stored = _stored_ticks(session, days)
        counts = _ten_second_counts(session, days)
    finally:
        cluster.shutdown()
    in_kafka = sum(_kafka_ticks(stack.kafka).values())

    stack.make("down", timeout=300)
    assert not stack.compose("ps", "-a", "-q").strip(), "make down left containers"
    stack.make("up", "SPARK=cluster")

    # The processor is now an application of the Spark master, its executors on the worker.
    def on_the_cluster() -> dict | None:
        with urllib.request.urlopen(f"{stack.spark_ui}/json/", timeout=10) as answer:
            master = json.load(answer)
        apps = [a["name"] for a in master["activeapps"]]
        working = any(w["state"] == "ALIVE" and w["coresused"] > 0 for w in master["workers"])
        return master if "stock-system-processor" in apps and working else None

    poll_for("the processor running on the Spark master's worker", on_the_cluster, timeout_s=240)

    assert sum(_kafka_ticks(stack.kafka).values()) >= in_kafka, "Kafka lost its log"
    cluster, session = stack.cassandra()
    try:
        assert stored <= _stored_ticks(session, days), "Cassandra lost rows"
        # The pipeline carries on: new ticks arrive and are stored, aggregates keep counting on
        # from the checkpointed state rather than from zero (executors on the worker read the
        # state the processor's own JVM wrote, from the shared volume).
        poll_for("new ticks stored after make up",
              lambda: len(_stored_ticks(session, days | {time.strftime("%Y-%m-%d", time.gmtime())}))
              > len(stored), timeout_s=240)  # fmt: skip
        poll_for("aggregates growing from where they were",
              lambda: all(_ten_second_counts(session, days)[s] > counts[s] for s in SYMBOLS),
              timeout_s=240)  # fmt: skip
    finally:
        cluster.shutdown()


def test_make_clean_leaves_no_container_network_or_volume(stack: Stack):
    # Without SPARK=cluster: the cluster's master and worker go all the same.
    stack.make("clean", timeout=300)
    label = f"label=com.docker.compose.project={PROJECT}"
    for kind in ("container", "network", "volume"):
        listing = ["docker", kind, "ls", "-q", "--filter", label]
        if kind == "container":
            listing.insert(3, "-a")
        left = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
        assert not left, f"make clean left {kind}s: {left}"
