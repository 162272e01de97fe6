import pytest

from processor.settings import build_parser, parse_settings


def test_defaults_match_the_issue():
    s = parse_settings([], environ={})
    assert s.windows_ms == (60_000,)
    assert s.watermark_ms == 30_000
    assert s.spark_master == "local[*]"
    assert (s.ticks_topic, s.aggregates_topic, s.dead_letter_topic) == (
        "ticks",
        "aggregates",
        "dead-letters",
    )
    assert s.starting_offsets == "earliest"
    assert s.spark_jars is None  # resolved from the cache at start-up


def test_every_setting_has_its_env_twin(tmp_path):
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:29092",
        "TICKS_TOPIC": "t",
        "AGGREGATES_TOPIC": "a",
        "DEAD_LETTER_TOPIC": "d",
        "SPARK_MASTER": "spark://spark-master:7077",
        "WINDOWS": "5m,10s,1m",
        "WATERMARK": "45s",
        "CHECKPOINT_DIR": str(tmp_path / "cp"),
        "TRIGGER_INTERVAL": "250ms",
        "MAX_OFFSETS_PER_TRIGGER": "0",
        "SHUFFLE_PARTITIONS": "3",
        "STARTING_OFFSETS": "latest",
        "SPARK_JARS": "/a.jar,/b.jar",
        "STACK_CACHE_DIR": str(tmp_path / "cache"),
        "LOG_LEVEL": "debug",
    }
    s = parse_settings([], environ=env)
    assert s.bootstrap_servers == "kafka:29092"
    assert (s.ticks_topic, s.aggregates_topic, s.dead_letter_topic) == ("t", "a", "d")
    assert s.spark_master == "spark://spark-master:7077"
    assert s.windows_ms == (10_000, 60_000, 300_000)
    assert s.watermark_ms == 45_000
    assert s.checkpoint_dir == tmp_path / "cp"
    assert s.trigger_interval_ms == 250
    assert s.max_offsets_per_trigger is None
    assert s.shuffle_partitions == 3
    assert s.starting_offsets == "latest"
    assert [str(j) for j in s.spark_jars] == ["/a.jar", "/b.jar"]
    assert s.cache_dir == tmp_path / "cache"
    assert s.log_level == "DEBUG"
    help_text = " ".join(build_parser(env).format_help().split())
    for name in env:
        assert f"[env: {name}]" in help_text


def test_checkpoint_per_query(tmp_path):
    s = parse_settings(["--checkpoint-dir", str(tmp_path)], environ={})
    assert s.checkpoint("aggregates") != s.checkpoint("dead-letters")
    assert s.checkpoint("aggregates").parent == tmp_path


@pytest.mark.parametrize(
    ("argv", "env", "hint"),
    [
        ([], {"WINDOWS": "1m,60s"}, "twice"),
        (["--windows", "soon"], {}, "duration"),
        (["--windows", ","], {}, "window size"),
        (["--watermark", "0s"], {}, "above 0"),
        (["--starting-offsets", "middle"], {}, "invalid choice"),
        (["--shuffle-partitions", "0"], {}, "above 0"),
        (["--ticks-topic", "bad topic"], {}, "topic name"),
        (["--aggregates-topic", "ticks"], {}, "three different"),
        (["--spark-master", "mars"], {}, "master URL"),
    ],
)
def test_bad_values_fail_at_parse_time_with_exit_2(argv, env, hint, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, environ=env)
    assert exc.value.code == 2
    assert hint in capsys.readouterr().err


def test_a_checkpoint_made_with_other_windows_is_refused(tmp_path):
    from processor.queries import CheckpointMismatch, check_layout

    check_layout(parse_settings(["--checkpoint-dir", str(tmp_path), "--windows", "1m"], {}))
    check_layout(parse_settings(["--checkpoint-dir", str(tmp_path), "--windows", "1m"], {}))
    with pytest.raises(CheckpointMismatch, match="new --checkpoint-dir"):
        check_layout(parse_settings(["--checkpoint-dir", str(tmp_path), "--windows", "10s"], {}))
