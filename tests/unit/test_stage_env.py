"""stack.stage_env: the one place a stage's launch environment is built, checked against the
stages' own settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.stage_env import REPO, StageSettingError, stage_env, stage_options


def test_every_stage_reads_what_it_is_given_and_values_are_rendered():
    env = stage_env(
        {"HOME": "/home/x", "PYTHONPATH": "/elsewhere"},
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092",
        CASSANDRA_HOSTS=("10.0.0.1", "10.0.0.2"),
        CASSANDRA_PORT=9042,
        CHECKPOINT_DIR=Path("/tmp/checkpoints"),
        SPARK_JARS=[Path("/a.jar"), Path("/b.jar")],
        WINDOWS=None,
    )
    assert env["HOME"] == "/home/x"  # the base carries over
    assert env["PYTHONPATH"] == str(REPO)  # the stages' code, whatever the caller had
    assert env["CASSANDRA_HOSTS"] == "10.0.0.1,10.0.0.2"
    assert env["CASSANDRA_PORT"] == "9042"
    assert env["CHECKPOINT_DIR"] == "/tmp/checkpoints"
    assert env["SPARK_JARS"] == "/a.jar,/b.jar"
    assert "WINDOWS" not in env  # None: the stage's own default


def test_the_options_are_the_stages_own():
    options = stage_options()
    # One from each stage's settings class.
    for name in ("SYMBOLS", "TRIGGER_INTERVAL", "CONSUMER_GROUP", "DASHBOARD_PORT"):
        assert name in options, name


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"CASANDRA_HOSTS": "x"}, "no stage reads"),  # misspelt
        ({"CASSANDRA_PORT": 70000}, "CASSANDRA_PORT='70000': must be a port"),
        ({"WINDOWS": "10s,10s"}, "WINDOWS="),
        ({"TRIGGER_INTERVAL": "soon"}, "TRIGGER_INTERVAL="),
    ],
)
def test_a_name_no_stage_reads_or_a_value_it_would_refuse_fails_here(values, says):
    with pytest.raises(StageSettingError, match=says):
        stage_env({}, **values)
