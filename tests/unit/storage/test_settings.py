import argparse

import pytest

from common.settings import keyspace_name
from storage.settings import (
    StorageSettings,
    build_parser,
    replication,
    settings_from_args,
    ttl_seconds,
)


def parse(argv, environ=None):
    return settings_from_args(build_parser(environ or {}).parse_args(argv))


def test_defaults_match_the_documented_ones():
    s = parse([])
    assert s == StorageSettings()
    assert s.keyspace == "stocks"
    assert s.consumer_group == "stock-storage"
    assert str(s.replication) == "SimpleStrategy:1"
    assert (s.ticks_ttl_s, s.aggregates_ttl_s) == (0, 0)
    assert (s.fetch_min_bytes, s.fetch_max_wait_ms) == (16 * 1024, 500)


def test_every_setting_has_its_env_twin():
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "TICKS_TOPIC": "t",
        "AGGREGATES_TOPIC": "a",
        "DEAD_LETTER_TOPIC": "d",
        "CONSUMER_GROUP": "g",
        "CASSANDRA_HOSTS": "c1, c2",
        "CASSANDRA_PORT": "9142",
        "CASSANDRA_KEYSPACE": "ks_1",
        "CASSANDRA_REPLICATION": "NetworkTopologyStrategy:dc1=3,dc2=2",
        "TICKS_TTL": "30d",
        "AGGREGATES_TTL": "12h",
        "WRITE_CONCURRENCY": "8",
        "BATCH_SIZE": "100",
        "FETCH_MIN_BYTES": "1",
        "FETCH_MAX_WAIT": "2s",
        "LOG_LEVEL": "debug",
    }
    s = parse([], env)
    assert s.bootstrap_servers == "k1:9092,k2:9092"
    assert (s.ticks_topic, s.aggregates_topic, s.dead_letter_topic) == ("t", "a", "d")
    assert s.consumer_group == "g"
    assert s.cassandra_hosts == ("c1", "c2")
    assert s.cassandra_port == 9142
    assert s.keyspace == "ks_1"
    assert s.replication.factors == (("dc1", 3), ("dc2", 2))
    assert (s.ticks_ttl_s, s.aggregates_ttl_s) == (30 * 86400, 12 * 3600)
    assert (s.write_concurrency, s.batch_size, s.log_level) == (8, 100, "DEBUG")
    assert (s.fetch_min_bytes, s.fetch_max_wait_ms) == (1, 2000)
    help_text = " ".join(build_parser({}).format_help().split())
    for name in env:
        assert f"[env: {name}]" in help_text


def test_flag_beats_env():
    assert parse(["--cassandra-keyspace", "flag"], {"CASSANDRA_KEYSPACE": "env"}).keyspace == "flag"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CASSANDRA_KEYSPACE": "Stocks"}, "CASSANDRA_KEYSPACE"),
        ({"CASSANDRA_KEYSPACE": "stocks; DROP KEYSPACE x"}, "CASSANDRA_KEYSPACE"),
        ({"CASSANDRA_REPLICATION": "SimpleStrategy"}, "CASSANDRA_REPLICATION"),
        ({"CASSANDRA_REPLICATION": "NetworkTopologyStrategy:dc1"}, "CASSANDRA_REPLICATION"),
        ({"CASSANDRA_REPLICATION": "NetworkTopologyStrategy:d'c=1"}, "CASSANDRA_REPLICATION"),
        ({"CASSANDRA_REPLICATION": "SimpleStrategy:0"}, "CASSANDRA_REPLICATION"),
        ({"TICKS_TTL": "1.5s"}, "TICKS_TTL"),
        ({"AGGREGATES_TTL": "soon"}, "AGGREGATES_TTL"),
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
        ({"FETCH_MIN_BYTES": "0"}, "FETCH_MIN_BYTES"),
        ({"FETCH_MIN_BYTES": str(50 * 1024 * 1024 + 1)}, "FETCH_MIN_BYTES"),
        ({"FETCH_MAX_WAIT": "11s"}, "FETCH_MAX_WAIT"),
        ({"FETCH_MAX_WAIT": "0"}, "FETCH_MAX_WAIT"),
        ({"TICKS_TOPIC": "bad topic"}, "TICKS_TOPIC"),
    ],
)
def test_bad_values_fail_at_parse_time_naming_the_variable(env, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        parse([], env)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_replication_renders_a_cql_map_from_validated_parts():
    assert replication("SimpleStrategy:3").cql_map() == (
        "{'class': 'SimpleStrategy', 'replication_factor': 3}"
    )
    nts = replication("NetworkTopologyStrategy:dc1=3,us-east=2")
    assert nts.cql_map() == "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'us-east': 2}"
    assert str(nts) == "NetworkTopologyStrategy:dc1=3,us-east=2"
    with pytest.raises(argparse.ArgumentTypeError, match="twice"):
        replication("NetworkTopologyStrategy:dc1=3,dc1=2")


def test_keyspace_names_are_checked_before_they_are_formatted_into_cql():
    assert keyspace_name("stocks") == "stocks"
    assert keyspace_name("a" * 48) == "a" * 48
    for bad in ("", "1stocks", "a" * 49, "stocks.ticks", "stocks-x", "Stocks"):
        with pytest.raises(argparse.ArgumentTypeError):
            keyspace_name(bad)


def test_ttl_none_means_rows_never_expire():
    assert ttl_seconds("none") == ttl_seconds("0") == 0
    assert ttl_seconds("90s") == 90
    with pytest.raises(argparse.ArgumentTypeError, match="20-year"):
        ttl_seconds(f"{21 * 365}d")


def test_topics_must_differ(capsys):
    from storage.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--ticks-topic", "same", "--aggregates-topic", "same", "init-schema"])
    assert exc.value.code == 2
    assert "four different topics" in capsys.readouterr().err
