"""The harness starts real services: each is exercised through its own protocol and tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from common.contract import Tick, now_ms
from stack import artifacts


def test_kafka_round_trip_keeps_key_and_value(services, make_topic):
    from kafka import KafkaConsumer, KafkaProducer

    topic = make_topic()
    tick = Tick("AAPL", 230.49, 100, now_ms(), "test")
    producer = KafkaProducer(bootstrap_servers=services.bootstrap_servers, acks="all")
    producer.send(topic, key=b"AAPL", value=tick.to_json()).get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=services.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    record = next(iter(consumer))
    consumer.close()
    assert record.key == b"AAPL"
    assert Tick.from_json(record.value) == tick


def test_cql_round_trip_with_prepared_statements(cassandra_session, make_keyspace):
    ks = make_keyspace()
    cassandra_session.execute(f"CREATE TABLE {ks}.kv (k text PRIMARY KEY, v double)")
    insert = cassandra_session.prepare(f"INSERT INTO {ks}.kv (k, v) VALUES (?, ?)")
    cassandra_session.execute(insert, ("AAPL", 230.49))
    select = cassandra_session.prepare(f"SELECT v FROM {ks}.kv WHERE k = ?")
    assert cassandra_session.execute(select, ("AAPL",)).one().v == pytest.approx(230.49)
    assert cassandra_session.execute(select, ("MSFT",)).one() is None


def test_cqlsh_client_queries_the_node(services, cassandra_session, make_keyspace):
    ks = make_keyspace()
    cassandra_session.execute(f"CREATE TABLE {ks}.prices (symbol text PRIMARY KEY, price double)")
    cassandra_session.execute(
        cassandra_session.prepare(f"INSERT INTO {ks}.prices (symbol, price) VALUES (?, ?)"),
        ("MSFT", 415.5),
    )
    cqlsh = shutil.which("cqlsh", path=os.path.dirname(sys.executable)) or shutil.which("cqlsh")
    assert cqlsh, "the cqlsh client from PyPI must be installed (requirements-dev.txt)"
    result = subprocess.run(
        [cqlsh, services.cassandra_hosts[0], str(services.cassandra_port),
         "-e", f"SELECT symbol, price FROM {ks}.prices"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "MSFT" in result.stdout and "415.5" in result.stdout
    assert "(1 rows)" in result.stdout


def test_broker_is_registered_in_zookeeper(services):
    if services.zookeeper_connect is None:
        pytest.fail("ZOOKEEPER_CONNECT must be set when attaching to running services")
    jars = artifacts.resolve(services.cache_dir, artifacts.KAFKA)
    # ZooKeeper's own command-line client, from the jars the broker runs on.
    result = subprocess.run(
        ["java", "-cp", ":".join(map(str, jars)), "org.apache.zookeeper.ZooKeeperMain",
         "-server", services.zookeeper_connect, "get", "/brokers/ids/0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    host, port = services.bootstrap_servers.split(",")[0].rsplit(":", 1)
    assert f'"host":"{host}"' in result.stdout
    assert f'"port":{port}' in result.stdout


def test_spark_reads_a_kafka_topic_through_the_connector(services, make_topic, spark):
    from kafka import KafkaProducer

    topic = make_topic(partitions=2)
    producer = KafkaProducer(bootstrap_servers=services.bootstrap_servers)
    sent = {f"SYM{i}": Tick(f"SYM{i}", 10.0 + i, i, now_ms(), "test") for i in range(20)}
    for symbol, tick in sent.items():
        producer.send(topic, key=symbol.encode(), value=tick.to_json())
    producer.flush()
    producer.close()

    rows = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", services.bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "value", "partition")
        .collect()
    )
    got = {row.key: Tick.from_json(bytes(row.value)) for row in rows}
    assert got == sent
    assert {row.partition for row in rows} <= {0, 1}


def test_stack_status_cli_reports_the_harness_stack(services):
    if services.stack is None:
        pytest.skip("attached to services the harness did not start")
    result = subprocess.run(
        [sys.executable, "-m", "stack", "--run-dir", str(services.stack.settings.run_dir),
         "status"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("zookeeper", "kafka", "cassandra"):
        assert f"{name}" in result.stdout
    assert result.stdout.count("healthy") == 3
