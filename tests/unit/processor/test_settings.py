import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from processor.settings import ProcessorSettings, build_parser, parse_settings

REPO = Path(__file__).resolve().parents[3]


def test_defaults_match_the_issue():
    s = parse_settings([], environ={})
    # common.settings.WINDOWS, the one default of every way to start it (issue #19).
    assert s.windows_ms == (10_000, 60_000)
    assert s.watermark_ms == 30_000
    assert s.spark_master == "local[*]"
    assert (s.ticks_topic, s.aggregates_topic, s.dead_letter_topic) == (
        "ticks",
        "aggregates",
        "dead-letters",
    )
    assert s.starting_offsets == "earliest"
    assert s.spark_jars is None  # required at start-up (see test_jars_are_required)


def test_one_set_of_defaults_for_the_object_and_the_parser():
    parsed = parse_settings([], environ={})
    for field in dataclasses.fields(ProcessorSettings):
        assert getattr(parsed, field.name) == field.default, field.name


def test_every_setting_has_its_env_twin(tmp_path):
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
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
        "MIN_OFFSETS_PER_TRIGGER": "2000",
        "MAX_TRIGGER_DELAY": "3s",
        "SHUFFLE_PARTITIONS": "3",
        "STARTING_OFFSETS": "latest",
        "SPARK_JARS": ",".join(str(j) for j in jars),
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
    assert (s.min_offsets_per_trigger, s.max_trigger_delay_ms) == (2000, 3000)
    assert s.shuffle_partitions == 3
    assert s.starting_offsets == "latest"
    assert list(s.spark_jars) == jars
    assert s.log_level == "DEBUG"
    help_text = " ".join(build_parser(env).format_help().split())
    for name in env:
        assert f"[env: {name}]" in help_text


def test_checkpoint_per_query(tmp_path):
    s = parse_settings(["--checkpoint-dir", str(tmp_path)], environ={})
    assert s.checkpoint("processor").parent == tmp_path


@pytest.mark.parametrize(
    ("argv", "env", "hint"),
    [
        ([], {"WINDOWS": "1m,60s"}, "twice"),
        (["--windows", "soon"], {}, "duration"),
        (["--windows", ","], {}, "window size"),
        (["--watermark", "0s"], {}, "above 0"),
        (["--starting-offsets", "middle"], {}, "invalid choice"),
        ([], {"STARTING_OFFSETS": "bogus"}, "STARTING_OFFSETS='bogus'"),
        ([], {"SHUFFLE_PARTITIONS": "many"}, "SHUFFLE_PARTITIONS"),
        ([], {"SPARK_MASTER": "mars"}, "SPARK_MASTER"),
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
    err = capsys.readouterr().err
    assert hint in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "hint"),
    [
        ({"STARTING_OFFSETS": "bogus"}, "STARTING_OFFSETS"),
        ({}, "SPARK_JARS"),
        ({"SPARK_JARS": "/nonexistent/connector.jar"}, "/nonexistent/connector.jar"),
    ],
)
def test_the_command_says_what_is_wrong_in_one_line(env, hint, tmp_path):
    """No traceback, exit 2, one line naming the variable (and where the jars come from)."""
    clean = {k: v for k, v in os.environ.items() if k != "SPARK_JARS"}
    proc = subprocess.run(
        [sys.executable, "-m", "processor"],
        cwd=REPO, env={**clean, **env, "CHECKPOINT_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and hint in lines[0], proc.stderr
    if hint != "STARTING_OFFSETS":
        assert "SPARK_JARS" in lines[0] and "python -m stack jars" in lines[0]


def test_a_checkpoint_made_with_other_windows_is_refused(tmp_path):
    from processor.queries import CheckpointMismatch, check_layout

    check_layout(parse_settings(["--checkpoint-dir", str(tmp_path), "--windows", "1m"], {}))
    check_layout(parse_settings(["--checkpoint-dir", str(tmp_path), "--windows", "1m"], {}))
    with pytest.raises(CheckpointMismatch, match="new --checkpoint-dir"):
        check_layout(parse_settings(["--checkpoint-dir", str(tmp_path), "--windows", "10s"], {}))


def test_a_checkpoint_of_the_older_two_query_plan_is_refused(tmp_path):
    """Plan 1 (before one query) wrote its layout without a plan number: its state would be
    misread, so the job refuses it and says how to go on."""
    from processor.queries import CheckpointMismatch, check_layout

    (tmp_path / "processor-layout.json").write_text(
        '{"ticks_topic": "ticks", "windows_ms": [60000], "watermark_ms": 30000}\n'
    )
    with pytest.raises(CheckpointMismatch, match="older processor .*plan 1.*new --checkpoint-dir"):
        check_layout(parse_settings(["--checkpoint-dir", str(tmp_path)], {}))
