"""A cluster's configs (python -m stack up --nodes 3): node n on 127.0.0.n, every service told of
every node, replication where the issue asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack import services
from stack.__main__ import build_parser
from stack.native import NativeStack, StackError
from stack.settings import StackSettings

JARS = [Path("/jars/a.jar")]


def _cluster(tmp_path: Path) -> StackSettings:
    return StackSettings(run_dir=tmp_path, nodes=3, zookeeper_port=12181, kafka_port=19092)


def _props(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if "=" in line]
    return dict(line.split("=", 1) for line in lines)


def test_one_node_keeps_its_plain_names_and_address(tmp_path):
    settings = StackSettings(run_dir=tmp_path)
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.cassandra_hosts == ["127.0.0.1"]
    assert services.instance_name(settings, "kafka") == "kafka"
    assert NativeStack(settings).instances() == ["zookeeper", "kafka", "cassandra"]


def test_every_node_has_its_own_address_and_every_client_sees_them_all(tmp_path):
    settings = _cluster(tmp_path)
    assert settings.bootstrap_servers == "127.0.0.1:19092,127.0.0.2:19092,127.0.0.3:19092"
    assert settings.zookeeper_connect == "127.0.0.1:12181,127.0.0.2:12181,127.0.0.3:12181"
    assert settings.cassandra_hosts == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert [settings.for_node(n).listen_host for n in (1, 2, 3)] == [
        "127.0.0.1", "127.0.0.2", "127.0.0.3"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="node 4"):
        settings.for_node(4)


def test_the_zookeeper_ensemble_names_every_server_and_each_its_id(tmp_path):
    settings = _cluster(tmp_path)
    for n in (1, 2, 3):
        spec = services.zookeeper(settings.for_node(n), JARS)
        home = tmp_path / f"zookeeper-{n}"
        conf = _props(home / "zookeeper.properties")
        assert spec.name == f"zookeeper-{n}"
        assert conf["clientPortAddress"] == f"127.0.0.{n}"
        assert [conf[f"server.{m}"] for m in (1, 2, 3)] == [
            f"127.0.0.{m}:2888:3888" for m in (1, 2, 3)
        ]
        assert (home / "data" / "myid").read_text().strip() == str(n)


def test_brokers_replicate_every_topic_three_ways_and_never_elect_an_unclean_leader(tmp_path):
    settings = _cluster(tmp_path)
    ids = set()
    for n in (1, 2, 3):
        services.kafka(settings.for_node(n), JARS)
        conf = _props(tmp_path / f"kafka-{n}" / "server.properties")
        ids.add(conf["broker.id"])
        assert conf["listeners"] == f"PLAINTEXT://127.0.0.{n}:19092"
        assert conf["zookeeper.connect"] == settings.zookeeper_connect
        for key, value in {
            "default.replication.factor": "3",
            "offsets.topic.replication.factor": "3",
            "transaction.state.log.replication.factor": "3",
            "min.insync.replicas": "2",
            "transaction.state.log.min.isr": "2",
            "unclean.leader.election.enable": "false",
            "controlled.shutdown.enable": "true",
        }.items():
            assert conf[key] == value, key
    assert len(ids) == 3


def test_cassandra_nodes_form_one_ring_from_one_seed_with_even_tokens(tmp_path):
    settings = _cluster(tmp_path)
    tokens, jmx = [], set()
    for n in (1, 2, 3):
        spec = services.cassandra(settings.for_node(n), JARS)
        yaml = (tmp_path / f"cassandra-{n}" / "conf" / "cassandra.yaml").read_text().splitlines()
        assert f"listen_address: 127.0.0.{n}" in yaml
        assert '      - seeds: "127.0.0.1:7000"' in yaml
        assert "auto_bootstrap: false" in yaml
        tokens += [int(line.split(": ")[1]) for line in yaml if line.startswith("initial_token")]
        jmx |= {a for a in spec.argv if a.startswith("-Dcassandra.jmx.local.port=")}
        # A node killed and restarted must come back with the schema the others have.
        assert "-Dcassandra.unsafesystem=true" not in spec.argv
    assert len(set(tokens)) == 3 and min(tokens) == -(2**63)
    assert tokens == sorted(tokens) and tokens[2] < 2**63
    assert len(jmx) == 3


def test_instances_take_services_or_nodes_and_refuse_others(tmp_path):
    stack = NativeStack(_cluster(tmp_path))
    assert stack.instances(["kafka"]) == ["kafka-1", "kafka-2", "kafka-3"]
    assert stack.instances(["cassandra-2", "zookeeper"]) == [
        "zookeeper-1", "zookeeper-2", "zookeeper-3", "cassandra-2"
    ]  # fmt: skip
    with pytest.raises(StackError, match="kafka-4"):
        stack.instances(["kafka-4"])
    assert stack.env()["CASSANDRA_REPLICATION"] == "NetworkTopologyStrategy:datacenter1=3"


def test_nodes_is_checked_on_the_command_line(capsys):
    args = build_parser().parse_args(["up", "--nodes", "3", "kafka-2"])
    assert (args.nodes, args.services) == (3, ["kafka-2"])
    for bad in ("0", "10", "three"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["up", "--nodes", bad])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["down", "kafak"])
    assert "not a service" in capsys.readouterr().err


def test_status_text_flags_what_is_down_or_out_of_sync():
    from stack.cluster_view import ClusterView, Partition, render

    view = ClusterView(
        zookeeper={1: "follower", 2: None, 3: "leader"},
        brokers=(0, 2),
        partitions=[
            Partition("ticks", 0, 2, (0, 1, 2), (2, 0)),
            Partition("ticks", 1, 0, (1, 2, 0), (0, 1, 2)),
            Partition("ticks", 2, -1, (1,), ()),
        ],
        cassandra={"127.0.0.2": "DN", "127.0.0.1": "UN"},
    )
    lines = render(view).splitlines()
    assert "  node 2: DOWN or no quorum" in lines
    assert "Kafka brokers registered: 0, 2" in lines
    assert "  ticks[0] leader=2 replicas=[0, 1, 2] isr=[2, 0]  UNDER-REPLICATED" in lines
    assert "  ticks[1] leader=0 replicas=[1, 2, 0] isr=[0, 1, 2]" in lines
    assert "  ticks[2] leader=none replicas=[1] isr=[]  UNDER-REPLICATED" in lines
    assert lines[-2:] == ["  UN 127.0.0.1", "  DN 127.0.0.2"]
