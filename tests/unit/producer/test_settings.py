from __future__ import annotations

import subprocess
import sys

import pytest

from producer.settings import DEFAULT_SYMBOLS, build_parser, parse_settings

ENV_TWINS = [
    "SYMBOLS", "SYMBOLS_FILE", "PRICE_SOURCE", "FETCH_INTERVAL", "KAFKA_BOOTSTRAP_SERVERS",
    "TICKS_TOPIC", "DEAD_LETTER_TOPIC", "TOPIC_PARTITIONS", "TOPIC_REPLICATION",
    "FINNHUB_API_KEY", "YAHOO_BASE_URL", "STOOQ_BASE_URL", "FINNHUB_BASE_URL", "REPLAY_FILE",
    "REPLAY_SPEED", "SIM_SEED", "SIM_RATE", "MAX_TICKS", "LOG_LEVEL", "STATS_INTERVAL",
    "KAFKA_LINGER_MS", "KAFKA_BATCH_SIZE", "KAFKA_COMPRESSION",
]  # fmt: skip


def fails(argv, environ=None, capsys=None) -> str:
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, environ or {})
    assert exc.value.code == 2
    return capsys.readouterr().err if capsys else ""


def test_help_shows_every_env_twin():
    text = " ".join(build_parser({}).format_help().split())
    for name in ENV_TWINS:
        assert name in text, name


def test_defaults_run_offline_on_the_simulated_source():
    s = parse_settings([], {})
    assert (s.source, s.symbols, s.symbols_given) == ("simulated", DEFAULT_SYMBOLS, False)
    assert s.bootstrap_servers == "127.0.0.1:9092" and s.interval_ms == 5000


def test_symbols_comma_or_space_separated_from_flag_env_and_file(tmp_path):
    assert parse_settings(["--symbols", "AAPL,MSFT GOOG"], {}).symbols == ("AAPL", "MSFT", "GOOG")
    assert parse_settings([], {"SYMBOLS": "TSLA, NVDA"}).symbols == ("TSLA", "NVDA")
    f = tmp_path / "symbols.txt"
    f.write_text("# my watch list\nAAPL MSFT\nBRK.B  # Berkshire\n")
    s = parse_settings(["--symbols", "IBM", "--symbols-file", str(f)], {})
    assert s.symbols == ("IBM", "AAPL", "MSFT", "BRK.B") and s.symbols_given


def test_flag_beats_env():
    s = parse_settings(["--interval", "2s"], {"FETCH_INTERVAL": "30", "PRICE_SOURCE": "stooq"})
    assert (s.interval_ms, s.source) == (2000, "stooq")


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["--symbols", "aapl"], {}, "not valid"),
        (["--symbols", "AAPL;DROP"], {}, "not valid"),
        (["--source", "bloomberg"], {}, "not one of: simulated"),
        ([], {"PRICE_SOURCE": "bloomberg"}, "not one of: simulated"),
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
    ],
)
def test_impossible_values_fail_at_start_with_a_clear_message(argv, environ, expected, capsys):
    assert expected in fails(argv, environ, capsys)


def test_finnhub_key_comes_from_the_environment_and_masks_itself():
    s = parse_settings(["--source", "finnhub"], {"FINNHUB_API_KEY": "abc123"})
    assert s.finnhub_api_key.reveal() == "abc123"
    assert "abc123" not in repr(s)


def test_replay_speed_max_and_compression_none(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("AAPL,1724788801000,230.49\n")
    s = parse_settings(
        ["--source", "replay", "--replay-file", str(f), "--replay-speed", "max"],
        {"KAFKA_COMPRESSION": "none"},
    )
    assert (s.replay_speed, s.kafka_compression, s.symbols_given) == (0.0, None, False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_help_exits_zero_and_names_env_twins():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "[env: PRICE_SOURCE]" in result.stdout and "FINNHUB_API_KEY" in result.stdout


def test_cli_bad_symbol_and_bad_flag_exit_non_zero_with_a_message():
    bad_symbol = run_cli("--symbols", "AAPL,m$ft")
    assert bad_symbol.returncode == 2
    assert "symbol 'm$ft' is not valid" in bad_symbol.stderr
    bad_flag = run_cli("--no-such-flag")
    assert bad_flag.returncode == 2 and "unrecognized arguments" in bad_flag.stderr
