"""The container settings of `python -m stack.serve`: the native configs with other addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack import artifacts, serve, services


def _settings(tmp_path: Path, *args: str):
    parsed = serve.build_parser(environ={}).parse_args(
        ["--run-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "run", *args]
    )
    return serve.serve_settings(parsed)


def test_kafka_in_a_container_advertises_its_name_inside_and_the_host_port_outside(tmp_path):
    settings = _settings(
        tmp_path,
        "kafka",
        "--advertised-host=kafka",
        "--kafka-external-port=9094",
        "--kafka-external-advertised=127.0.0.1:19092",
    )
    services.kafka(settings, [Path("/jars/a.jar")])
    conf = (tmp_path / "kafka" / "server.properties").read_text().splitlines()
    assert "listeners=INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094" in conf
    assert "advertised.listeners=INTERNAL://kafka:9092,EXTERNAL://127.0.0.1:19092" in conf
    assert "inter.broker.listener.name=INTERNAL" in conf
    assert "zookeeper.connect=zookeeper:2181" in conf
    assert f"log.dirs={tmp_path / 'kafka' / 'data'}" in conf


def test_zookeeper_and_cassandra_listen_everywhere_and_cassandra_names_its_address(tmp_path):
    settings = _settings(tmp_path, "cassandra", "--advertised-host=10.1.2.3")
    services.zookeeper(settings, [Path("/jars/a.jar")])
    zoo = (tmp_path / "zookeeper" / "zookeeper.properties").read_text().splitlines()
    assert "clientPortAddress=0.0.0.0" in zoo
    spec = services.cassandra(settings, [Path("/jars/a.jar")])
    yaml = (tmp_path / "cassandra" / "conf" / "cassandra.yaml").read_text().splitlines()
    for line in ("listen_address: 10.1.2.3", "rpc_address: 0.0.0.0",
                 "broadcast_rpc_address: 10.1.2.3", '      - seeds: "10.1.2.3:7000"'):  # fmt: skip
        assert line in yaml
    # Users' data lives in the compose volume: the system tables stay durable there.
    assert "-Dcassandra.unsafesystem=true" not in spec.argv


def test_run_refuses_to_fetch_jars_at_start(tmp_path):
    args = serve.build_parser(environ={}).parse_args(
        ["--run-dir", str(tmp_path), "--cache-dir", str(tmp_path / "empty"), "run", "kafka"]
    )
    assert not artifacts.is_resolved(tmp_path / "empty", artifacts.KAFKA)
    with pytest.raises(serve.StackError, match="nothing is fetched at start"):
        serve.serve(args)


def test_probe_says_no_when_nothing_answers():
    port = serve.StackSettings.on_free_ports(Path("/nonexistent")).zookeeper_port
    args = serve.build_parser(environ={}).parse_args(["probe", "zookeeper", "--port", str(port)])
    assert serve.probe(args) == 1


@pytest.mark.parametrize("service", ["dashboard", "spark-master", "spark-worker"])
def test_http_probes_say_no_when_nothing_answers(service):
    port = serve.StackSettings.on_free_ports(Path("/nonexistent")).kafka_port
    args = serve.build_parser(environ={}).parse_args(["probe", service, "--port", str(port)])
    assert serve.probe(args) == 1


def test_http_probes_need_the_port():
    args = serve.build_parser(environ={}).parse_args(["probe", "dashboard"])
    with pytest.raises(serve.StackError, match="needs --port"):
        serve.probe(args)


def test_a_container_node_of_a_cluster_names_its_peers_by_their_container_names(tmp_path):
    environ = {
        "STACK_NODES": "3",
        "STACK_NODE": "2",
        "STACK_NODE_HOSTS": "zookeeper,zookeeper-2,zookeeper-3",
        "ZOOKEEPER_HOST": "zookeeper,zookeeper-2,zookeeper-3",
    }
    args = serve.build_parser(environ=environ).parse_args(
        ["--run-dir", str(tmp_path), "run", "zookeeper", "--advertised-host=zookeeper-2"]
    )
    settings = serve.serve_settings(args)
    assert settings.zookeeper_connect == "zookeeper:2181,zookeeper-2:2181,zookeeper-3:2181"
    services.zookeeper(settings, [Path("/jars/a.jar")])
    conf = (tmp_path / "zookeeper-2" / "zookeeper.properties").read_text().splitlines()
    assert "server.3=zookeeper-3:2888:3888" in conf
    assert "quorumListenOnAllIPs=true" in conf
    assert (tmp_path / "zookeeper-2" / "data" / "myid").read_text().strip() == "2"
    services.kafka(settings, [Path("/jars/a.jar")])
    kafka = (tmp_path / "kafka-2" / "server.properties").read_text().splitlines()
    assert "broker.id=1" in kafka and "min.insync.replicas=2" in kafka
    services.cassandra(settings, [Path("/jars/a.jar")])
    yaml = (tmp_path / "cassandra-2" / "conf" / "cassandra.yaml").read_text()
    assert 'seeds: "zookeeper:7000"' in yaml  # node 1 of the names given: the seed


def test_a_cluster_node_without_its_peers_names_is_refused(tmp_path):
    args = serve.build_parser(environ={"STACK_NODES": "3"}).parse_args(
        ["--run-dir", str(tmp_path), "run", "kafka"]
    )
    with pytest.raises(serve.StackError, match="needs --node-hosts"):
        serve.serve_settings(args)
