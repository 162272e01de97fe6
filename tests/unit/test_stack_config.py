from pathlib import Path

from stack import artifacts, services
from stack.settings import StackSettings


def test_kafka_config_uses_zookeeper_mode_and_the_chosen_ports(tmp_path):
    settings = StackSettings(run_dir=tmp_path, zookeeper_port=12181, kafka_port=19092)
    spec = services.kafka(settings, [Path("/jars/a.jar")])
    conf = (tmp_path / "kafka" / "server.properties").read_text()
    assert "zookeeper.connect=127.0.0.1:12181" in conf
    assert "listeners=PLAINTEXT://127.0.0.1:19092" in conf
    assert "process.roles" not in conf  # unset means ZooKeeper mode
    assert spec.argv[-2:] == ["kafka.Kafka", str(tmp_path / "kafka" / "server.properties")]
    assert "-Xmx768m" in spec.argv


def test_cassandra_config_binds_loopback_with_java17_openings(tmp_path):
    settings = StackSettings(run_dir=tmp_path, cassandra_port=19042, cassandra_storage_port=17000)
    spec = services.cassandra(settings, [Path("/jars/jamm-0.4.0.jar")])
    yaml = (tmp_path / "cassandra" / "conf" / "cassandra.yaml").read_text()
    for line in ("native_transport_port: 19042", "storage_port: 17000", "listen_address: 127.0.0.1",
                 "commitlog_sync: periodic", 'seeds: "127.0.0.1:17000"'):  # fmt: skip
        assert line in yaml
    assert "--add-opens" in spec.argv
    assert "-javaagent:/jars/jamm-0.4.0.jar" in spec.argv
    assert spec.argv[-1] == "org.apache.cassandra.service.CassandraDaemon"


def test_resolution_marker_tracks_the_pom(tmp_path):
    bundle = artifacts.KAFKA
    target = artifacts.bundle_dir(tmp_path, bundle)
    target.mkdir(parents=True)
    assert not artifacts.is_resolved(tmp_path, bundle)
    (target / ".resolved").write_text("stale\n")
    assert not artifacts.is_resolved(tmp_path, bundle)
    (target / ".resolved").write_text(artifacts._fingerprint(bundle) + "\n")
    assert artifacts.is_resolved(tmp_path, bundle)


def test_stack_options_may_follow_the_subcommand():
    from stack.__main__ import hoist_global_options

    assert hoist_global_options(["status", "--run-dir", "/x", "--json"]) == [
        "--run-dir", "/x", "status", "--json"
    ]  # fmt: skip
    assert hoist_global_options(["up", "--run-dir=/x", "kafka"]) == ["--run-dir=/x", "up", "kafka"]
    assert hoist_global_options(["--run-dir", "/x", "up"]) == ["--run-dir", "/x", "up"]


def test_up_help_lists_the_services_plainly():
    from stack.__main__ import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["up"]
    text = sub.format_help()
    assert "zookeeper, kafka, cassandra" in text
    assert "[]" not in text and "default: []" not in text
