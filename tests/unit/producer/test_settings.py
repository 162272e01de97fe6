from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import options_of
from producer.settings import (
    DEFAULT_SYMBOLS,
    ProducerSettings,
    build_parser,
    env_names,
    parse_settings,
)

ROOT = Path(__file__).resolve().parents[3]
REPLAY_HEADER = "symbol,timestamp,price,volume\n"


def fails(argv, environ=None, capsys=None) -> str:
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, environ or {})
    assert exc.value.code == 2
    return capsys.readouterr().err if capsys else ""


def test_help_shows_every_env_twin():
    text = " ".join(build_parser({}).format_help().split())
    names = env_names()
    assert len(names) == len(options_of(ProducerSettings)) + 1  # + FINNHUB_API_KEY, env only
    for name in names:
        assert name in text, name


def test_defaults_run_offline_on_the_simulated_source():
    s = parse_settings([], {})
    assert (s.source, s.symbols, s.symbols_given) == ("simulated", DEFAULT_SYMBOLS, False)
    assert s.bootstrap_servers == "127.0.0.1:9092" and s.interval_ms == 5000
    assert s == ProducerSettings()  # one set of defaults: the declared ones


def test_symbols_comma_or_space_separated_from_flag_env_and_file(tmp_path):
    assert parse_settings(["--symbols", "AAPL,MSFT GOOG"], {}).symbols == ("AAPL", "MSFT", "GOOG")
    assert parse_settings([], {"SYMBOLS": "TSLA, NVDA"}).symbols == ("TSLA", "NVDA")
    f = tmp_path / "symbols.txt"
    f.write_text("# my watch list\nAAPL MSFT\nBRK.B  # Berkshire\n")
    s = parse_settings(["--symbols", "IBM,AAPL", "--symbols-file", str(f)], {})
    assert s.symbols == ("IBM", "AAPL", "MSFT", "BRK.B") and s.symbols_given
    assert parse_settings([], {"SYMBOLS_FILE": str(f)}).symbols == ("AAPL", "MSFT", "BRK.B")


def test_flag_beats_env():
    s = parse_settings(["--interval", "2s"], {"FETCH_INTERVAL": "30", "PRICE_SOURCE": "stooq"})
    assert (s.interval_ms, s.source) == (2000, "stooq")


def test_every_option_has_its_env_twin(tmp_path):
    replay = tmp_path / "r.csv"
    replay.write_text(REPLAY_HEADER)
    symbols = tmp_path / "s.txt"
    symbols.write_text("IBM\n")
    env = {
        "PRICE_SOURCE": "replay", "SYMBOLS": "AAPL", "SYMBOLS_FILE": str(symbols),
        "FETCH_INTERVAL": "2s", "STATS_INTERVAL": "1m", "MAX_TICKS": "7", "LOG_LEVEL": "debug",
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "TICKS_TOPIC": "t",
        "DEAD_LETTER_TOPIC": "d", "TOPIC_PARTITIONS": "6", "TOPIC_REPLICATION": "2",
        "KAFKA_LINGER_MS": "5", "KAFKA_BATCH_SIZE": "1024", "KAFKA_COMPRESSION": "none",
        "YAHOO_BASE_URL": "http://y:1/", "STOOQ_BASE_URL": "http://s:2",
        "FINNHUB_BASE_URL": "http://f:3", "HTTP_TIMEOUT": "3s", "HTTP_RETRIES": "1",
        "HTTP_BACKOFF": "100ms", "REPLAY_FILE": str(replay), "REPLAY_SPEED": "max",
        "SIM_SEED": "-4", "SIM_RATE": "0", "SIM_START": "1750000000000",
        "FINNHUB_API_KEY": "k3y", "ZOOKEEPER_HOSTS": "z1:2181,z2:2181",
        "FLEET_CHROOT": "/fleet/a", "ZOOKEEPER_SESSION_TIMEOUT": "10s",
        "BACKFILL_RANGE": "2w", "BACKFILL_INTERVAL": "5m", "BACKFILL_PAUSE": "0",
        "BARS_TOPIC": "b", "BACKFILL_DAILY_RANGE": "0", "STOP_TIMEOUT": "90s",
    }  # fmt: skip
    assert set(env) == set(env_names())
    s = parse_settings([], env)
    assert (s.source, s.symbols, s.interval_ms, s.stats_interval_ms) == (
        "replay", ("AAPL", "IBM"), 2000, 60_000
    )  # fmt: skip
    assert (s.max_ticks, s.log_level, s.bootstrap_servers) == (7, "DEBUG", "k1:9092,k2:9092")
    assert (s.ticks_topic, s.dead_letter_topic, s.topic_partitions, s.topic_replication) == (
        "t", "d", 6, 2
    )  # fmt: skip
    assert (s.kafka_linger_ms, s.kafka_batch_size, s.kafka_compression) == (5, 1024, None)
    assert s.stop_timeout_ms == 90_000
    assert (s.yahoo_base_url, s.stooq_base_url, s.finnhub_base_url) == (
        "http://y:1", "http://s:2", "http://f:3"
    )  # fmt: skip
    assert (s.http_timeout_ms, s.http_retries, s.http_backoff_ms) == (3000, 1, 100)
    assert (s.replay_file, s.replay_speed) == (replay, 0.0)
    assert (s.sim_seed, s.sim_rate, s.sim_start_ms) == (-4, 0.0, 1_750_000_000_000)
    assert s.finnhub_api_key.reveal() == "k3y"
    assert (s.coordinator, s.fleet_chroot, s.session_timeout_ms) == (
        "z1:2181,z2:2181", "/fleet/a", 10_000
    )  # fmt: skip
    assert (s.backfill_range_ms, s.backfill_interval, s.backfill_pause_ms, s.bars_topic) == (
        14 * 86_400_000, "5m", 0, "b"
    )  # fmt: skip
    assert s.backfill_daily_range_ms == 0


# A value each variable must refuse; the test below fails for an option added without one.
BAD_ENV = {
    "PRICE_SOURCE": "bloomberg",
    "ZOOKEEPER_HOSTS": "zk-without-port",
    "FLEET_CHROOT": "no/leading/slash",
    "ZOOKEEPER_SESSION_TIMEOUT": "1h",
    "SYMBOLS": "aapl;DROP",
    "SYMBOLS_FILE": "/nonexistent/symbols.txt",
    "FETCH_INTERVAL": "soon",
    "STATS_INTERVAL": "-5",
    "MAX_TICKS": "-1",
    "LOG_LEVEL": "LOUD",
    "KAFKA_BOOTSTRAP_SERVERS": "   ",
    "TICKS_TOPIC": "bad topic!",
    "DEAD_LETTER_TOPIC": "..",
    "TOPIC_PARTITIONS": "0",
    "TOPIC_REPLICATION": "two",
    "KAFKA_LINGER_MS": "1.5",
    "KAFKA_BATCH_SIZE": "0",
    "STOP_TIMEOUT": "1h",
    "KAFKA_COMPRESSION": "brotli",
    "YAHOO_BASE_URL": "ftp://x",
    "STOOQ_BASE_URL": "stooq.com",
    "FINNHUB_BASE_URL": "http://host:99999",
    "HTTP_TIMEOUT": "0s",
    "HTTP_RETRIES": "1000",
    "HTTP_BACKOFF": "fast",
    "REPLAY_FILE": "/nonexistent/replay.csv",
    "REPLAY_SPEED": "-2",
    "SIM_SEED": "forty-two",
    "SIM_RATE": "nan",
    "SIM_START": "yesterday",
    "BACKFILL_RANGE": "a while",
    "BACKFILL_INTERVAL": "1h",
    "BACKFILL_PAUSE": "-1s",
    "BACKFILL_DAILY_RANGE": "-1y",
    "BARS_TOPIC": "bars?",
    "FINNHUB_API_KEY": "two words",
}


def test_the_bad_values_cover_every_variable():
    assert set(BAD_ENV) == set(env_names())


@pytest.mark.parametrize("env", sorted(BAD_ENV))
def test_a_bad_env_value_is_one_line_naming_the_variable(env, capsys):
    err = fails([], {env: BAD_ENV[env]}, capsys)
    assert err.count("\n") == 1, err
    assert f"environment variable {env}" in err and "Traceback" not in err
    if env == "FINNHUB_API_KEY":
        assert BAD_ENV[env] not in err  # a secret is never echoed


def test_a_bad_env_value_ends_the_real_process_with_one_line(tmp_path):
    bad_header = tmp_path / "r.csv"
    bad_header.write_text("when,what,how much\n")
    for env, value in (("REPLAY_FILE", str(bad_header)), ("HTTP_TIMEOUT", "2h")):
        result = subprocess.run(
            [sys.executable, "-m", "producer"], cwd=ROOT, env={"PATH": "/usr/bin", env: value},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and f"environment variable {env}" in result.stderr


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["--symbols", "aapl"], {}, "not valid"),
        (["--symbols", "AAPL;DROP"], {}, "not valid"),
        (["--source", "bloomberg"], {}, "not one of: simulated"),
        (["--interval", "-5"], {}, "not a duration"),
        (["--interval", "soon"], {}, "not a duration"),
        (["--topic-partitions", "0"], {}, "above 0"),
        (["--sim-rate", "-1"], {}, "not a rate"),
        (["--replay-speed", "fast"], {}, "not a speed"),
        (["--source", "finnhub"], {}, "FINNHUB_API_KEY"),
        (["--source", "replay"], {}, "--replay-file"),
        (["--source", "replay", "--replay-file", "/nonexistent.csv"], {}, "not a readable file"),
        (["--ticks-topic", "bad topic!"], {}, "not a Kafka topic"),
        (["--yahoo-base-url", "ftp://x"], {}, "not an http(s) URL"),
        (["--kafka-compression", "brotli"], {}, "not one of"),
        (["--symbols-file", "/nonexistent.txt"], {}, "--symbols-file"),
        (["--finnhub-api-key", "k"], {}, "environment variable"),
        (["--log-level", "LOUD"], {}, "not a log level"),
        (["--stop-timeout", "forever"], {}, "not a duration"),
        (["--stop-timeout", "20m"], {}, "over 10 minutes"),
    ],
)
def test_impossible_values_fail_at_start_with_a_clear_message(argv, environ, expected, capsys):
    err = fails(argv, environ, capsys)
    assert expected in err and "Traceback" not in err


def test_a_replay_file_without_a_usable_header_is_refused_at_start(tmp_path, capsys):
    f = tmp_path / "r.csv"
    f.write_text("AAPL,1724788801000,230.49\n")
    err = fails(["--source", "replay", "--replay-file", str(f)], {}, capsys)
    assert "argument --replay-file" in err and "the first line must be the header" in err
    assert err.splitlines()[-1].startswith("python -m producer: error:")


def test_finnhub_key_comes_from_the_environment_and_masks_itself():
    s = parse_settings(["--source", "finnhub"], {"FINNHUB_API_KEY": "abc123"})
    assert s.finnhub_api_key.reveal() == "abc123"
    assert "abc123" not in repr(s)


def test_replay_speed_max_and_compression_none(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(REPLAY_HEADER + "AAPL,1724788801000,230.49,1\n")
    s = parse_settings(
        ["--source", "replay", "--replay-file", str(f), "--replay-speed", "max"],
        {"KAFKA_COMPRESSION": "none"},
    )
    assert (s.replay_speed, s.kafka_compression, s.symbols_given) == (0.0, None, False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_help_exits_zero_and_names_env_twins():
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "[env: PRICE_SOURCE]" in text and "FINNHUB_API_KEY" in text


def test_cli_bad_symbol_and_bad_flag_exit_non_zero_with_a_message():
    bad_symbol = run_cli("--symbols", "AAPL,m$ft")
    assert bad_symbol.returncode == 2
    assert "symbol 'm$ft' is not valid" in bad_symbol.stderr
    bad_flag = run_cli("--no-such-flag")
    assert bad_flag.returncode == 2 and "unrecognized arguments" in bad_flag.stderr
