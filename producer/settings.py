"""The producer's settings: each option declared once (flag, env twin, default, help, check).

`parse_settings` is the only place that looks at the command line and the environment. A value
from the environment goes through the same check as the flag's: a bad one ends the start with
exit code 2 and one line that names the variable; a bad flag, one line that names the flag;
options that cannot work together, one line that says which and what to do. Nothing later has
to second-guess its configuration.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from common.contract import BAR_INTERVALS, ContractError, clip, parse_symbols
from common.settings import (
    BARS_TOPIC_OPTION,
    BOOTSTRAP_SERVERS,
    COORDINATOR,
    DEAD_LETTER_TOPIC_OPTION,
    FLEET_CHROOT,
    LOG_LEVEL,
    PRICE_SOURCES,
    TICKS_TOPIC_OPTION,
    EnvArgumentParser,
    Secret,
    add_options,
    capped,
    duration_ms,
    non_negative_int,
    one_of,
    option,
    options_of,
    positive_int,
    settings_from,
)
from producer.compression import COMPRESSIONS, compression
from producer.replay_format import replay_file

SOURCES = PRICE_SOURCES
POLLED_SOURCES = ("yahoo", "stooq", "finnhub")
DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG")
FINNHUB_KEY_ENV = "FINNHUB_API_KEY"
# What an HTTP header value can carry: a key with a space or a newline would break the request.
_API_KEY = re.compile(r"^[\x21-\x7e]{1,256}$")


# --- checks: each turns the text of a flag or an env value into the setting, or says why not --


def history_range(text: str) -> int:
    """'5d', '2w', '1y', '12h' (or 0 / none: no history) as milliseconds."""
    text = text.strip().lower()
    if text in ("0", "none", "off"):
        return 0
    for suffix, days in (("w", 7), ("y", 365)):
        if text.endswith(suffix) and text[:-1].isdigit() and int(text[:-1]) > 0:
            return int(text[:-1]) * days * 86_400_000
    try:
        return duration_ms(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a range: use e.g. 12h, 5d, 2w, 1y, or 0 for none"
        ) from None


def _pause(text: str) -> int:
    return 0 if text.strip() == "0" else duration_ms(text)


def _symbols(text: str) -> tuple[str, ...]:
    try:
        return tuple(parse_symbols(text))
    except ContractError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _symbols_file(text: str) -> tuple[str, ...]:
    """The symbols of a file: one or more per line, '#' starts a comment."""
    path = Path(text)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise argparse.ArgumentTypeError(f"cannot read {clip(text, 200)}: {why}") from None
    words = " ".join(line.split("#", 1)[0] for line in lines)
    if not words.strip():
        raise argparse.ArgumentTypeError(f"{clip(text, 200)} holds no symbols")
    return _symbols(words)


def _url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL like https://host:port")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has a port that is not 1 to 65535") from None
    return text.strip().rstrip("/")


def _speed(text: str) -> float:
    if text.strip().lower() in ("max", "0"):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a speed: use 1 (real time), 10 (ten times faster) or max"
        )
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate: use ticks per second over all symbols, or 0 for full speed"
        )
    return value


def _seed(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


_epoch_ms = capped(non_negative_int, 10**15, "{text} is not epoch milliseconds (too far ahead)")


_timeout = capped(duration_ms, 3_600_000, "{text!r} is over an hour: a source would seem to hang")


_retries = capped(non_negative_int, 20, "{text} retries is too many: use 0 to 20")


# The Kafka client refuses a linger that, with its 30 s request timeout, does not fit in its
# 120 s delivery timeout; a minute is more than any batching needs.
_linger = capped(non_negative_int, 60_000, "{text} ms is over a minute: use 0 to 60000")


_batch_bytes = capped(positive_int, 64 * 1024 * 1024, "{text} bytes is over 64 MiB per batch")


# A stop that waits longer than this for Kafka is better ended and its losses counted.
_stop_timeout = capped(duration_ms, 600_000, "{text!r} is over 10 minutes: use 0 to 10m")


_session = capped(duration_ms, 600_000, "{text!r} is over 10 minutes: a dead producer's symbols "
                  "would wait that long")  # fmt: skip


def _choices(names: tuple[str, ...]) -> str:
    return "{" + ",".join(names) + "}"


@dataclass(frozen=True)
class ProducerSettings:
    source: str = option(
        "--source",
        "PRICE_SOURCE",
        "simulated",
        f"where prices come from: {_choices(SOURCES)}",
        one_of(SOURCES),
    )
    listed_symbols: tuple[str, ...] | None = option(
        "--symbols",
        "SYMBOLS",
        None,
        f"symbols, comma or space separated (default: {','.join(DEFAULT_SYMBOLS)}; "
        "replay: every symbol in the file)",
        _symbols,
    )
    file_symbols: tuple[str, ...] | None = option(
        "--symbols-file",
        "SYMBOLS_FILE",
        None,
        "a file of symbols, one or more per line, '#' starts a comment; adds to --symbols",
        _symbols_file,
    )
    interval_ms: int = option(
        "--interval",
        "FETCH_INTERVAL",
        "5",
        "seconds between fetch rounds of the polled sources (5, 500ms, 1m); raised to the "
        "source's minimum so a free API is not hammered",
        duration_ms,
    )
    stats_interval_ms: int = option(
        "--stats-interval",
        "STATS_INTERVAL",
        "30",
        "seconds between counter log lines",
        duration_ms,
    )
    max_ticks: int = option(
        "--max-ticks",
        "MAX_TICKS",
        "0",
        "stop after this many ticks (0: run until stopped)",
        non_negative_int,
    )
    coordinator: str | None = COORDINATOR.field()
    fleet_chroot: str = FLEET_CHROOT.field()
    session_timeout_ms: int = option(
        "--session-timeout",
        "ZOOKEEPER_SESSION_TIMEOUT",
        "6s",
        "the fleet's ZooKeeper session: a producer silent this long loses its symbols to others",
        _session,
    )
    backfill_range_ms: int = option(
        "--backfill-range",
        "BACKFILL_RANGE",
        "5d",
        "history fetched when the producer starts following a symbol (at start, when it is "
        "added, after a restart or a handover), which also fills the gap an outage left; "
        "e.g. 1d, 5d, 1y; 0: none",
        history_range,
    )
    backfill_interval: str = option(
        "--backfill-interval",
        "BACKFILL_INTERVAL",
        "1m",
        f"bar size of that history: {_choices(tuple(BAR_INTERVALS))}",
        one_of(tuple(BAR_INTERVALS)),
    )
    backfill_daily_range_ms: int = option(
        "--backfill-daily-range",
        "BACKFILL_DAILY_RANGE",
        "1y",
        "daily bars fetched beside that history, for charts of months (when the source has "
        "them and BACKFILL_INTERVAL is finer); 0: none",
        history_range,
    )
    backfill_pause_ms: int = option(
        "--backfill-pause",
        "BACKFILL_PAUSE",
        "500ms",
        "pause between two history requests to a polled source (429s back off further)",
        _pause,
    )
    log_level: str = LOG_LEVEL.field()
    bootstrap_servers: str = BOOTSTRAP_SERVERS.field()
    ticks_topic: str = TICKS_TOPIC_OPTION.field()
    bars_topic: str = BARS_TOPIC_OPTION.field()
    dead_letter_topic: str = DEAD_LETTER_TOPIC_OPTION.field()
    topic_partitions: int = option(
        "--topic-partitions",
        "TOPIC_PARTITIONS",
        "3",
        "partitions of the topics created at start when missing",
        positive_int,
    )
    topic_replication: int = option(
        "--topic-replication",
        "TOPIC_REPLICATION",
        "0",
        "replication factor of the topics created at start when missing (0: the brokers' "
        "default.replication.factor)",
        non_negative_int,
    )
    kafka_linger_ms: int = option(
        "--kafka-linger-ms",
        "KAFKA_LINGER_MS",
        "20",
        "how long the client waits to fill a batch (ms, at most 60000)",
        _linger,
    )
    stop_timeout_ms: int = option(
        "--stop-timeout",
        "STOP_TIMEOUT",
        "30s",
        "on SIGTERM or at the end, how long Kafka gets to acknowledge what the producer holds; "
        "what it has not by then is given up, counted as delivery_failed (exit 1)",
        _stop_timeout,
    )
    kafka_batch_size: int = option(
        "--kafka-batch-size",
        "KAFKA_BATCH_SIZE",
        str(256 * 1024),
        "bytes per partition batch",
        _batch_bytes,
    )
    kafka_compression: str | None = option(
        "--kafka-compression",
        "KAFKA_COMPRESSION",
        "gzip",
        f"batch compression: {_choices(COMPRESSIONS)}",
        compression,
    )
    yahoo_base_url: str = option(
        "--yahoo-base-url",
        "YAHOO_BASE_URL",
        "https://query1.finance.yahoo.com",
        "Yahoo Finance chart API",
        _url,
    )
    stooq_base_url: str = option(
        "--stooq-base-url", "STOOQ_BASE_URL", "https://stooq.com", "Stooq CSV quotes", _url
    )
    finnhub_base_url: str = option(
        "--finnhub-base-url", "FINNHUB_BASE_URL", "https://finnhub.io", "Finnhub REST API", _url
    )
    http_timeout_ms: int = option(
        "--http-timeout",
        "HTTP_TIMEOUT",
        "10",
        "seconds a source has for a whole answer, from connecting to its last byte (a slower "
        "one is abandoned and asked again next round)",
        _timeout,
    )
    http_retries: int = option(
        "--http-retries",
        "HTTP_RETRIES",
        "3",
        "retries of a request that got 429, 5xx or no connection (exponential backoff, "
        "jitter, Retry-After honoured)",
        _retries,
    )
    http_backoff_ms: int = option(
        "--http-backoff",
        "HTTP_BACKOFF",
        "500ms",
        "first retry delay; doubles each retry",
        duration_ms,
    )
    replay_file: Path | None = option(
        "--replay-file",
        "REPLAY_FILE",
        None,
        "CSV for --source replay; its header names the columns: symbol, timestamp (or ts, "
        "time, ts_ms), price and optionally volume",
        replay_file,
    )
    replay_speed: float = option(
        "--replay-speed",
        "REPLAY_SPEED",
        "1",
        "1 real time, 10 ten times faster, 0 or max as fast as possible",
        _speed,
    )
    sim_seed: int = option(
        "--sim-seed",
        "SIM_SEED",
        "42",
        "seed of the simulated prices (same seed, same ticks)",
        _seed,
    )
    sim_rate: float = option(
        "--sim-rate",
        "SIM_RATE",
        "10",
        "simulated ticks per second over all symbols; 0 = as fast as possible",
        _rate,
    )
    sim_start_ms: int | None = option(
        "--sim-start",
        "SIM_START",
        None,
        "epoch ms the simulated clock starts at (default: now)",
        _epoch_ms,
    )
    # Environment only, never a flag (it would show in `ps` and shell history), never logged.
    finnhub_api_key: Secret | None = None

    def __post_init__(self) -> None:
        if self.source == "finnhub" and self.finnhub_api_key is None:
            raise ValueError(
                f"--source finnhub needs an API key: set {FINNHUB_KEY_ENV} (free at finnhub.io)"
            )
        if self.source == "replay" and self.replay_file is None:
            raise ValueError(
                "--source replay needs --replay-file (or REPLAY_FILE): a CSV to replay"
            )

    @property
    def symbols_given(self) -> bool:
        """Symbols were named (replay publishes its whole file unless they were)."""
        return bool(self.listed_symbols or self.file_symbols)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols to follow: --symbols, then those of --symbols-file, each once."""
        if not self.symbols_given:
            return DEFAULT_SYMBOLS
        named = (*(self.listed_symbols or ()), *(self.file_symbols or ()))
        return tuple(dict.fromkeys(named))

    @property
    def polled(self) -> bool:
        return self.source in POLLED_SOURCES


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m producer",
        description="Fetch prices for the symbols you name and publish them to Kafka as ticks "
        "(the tick contract's JSON, keyed by symbol). Every flag has an environment twin.",
        epilog=f"{FINNHUB_KEY_ENV} (environment only, never a flag, never logged): the key "
        "for --source finnhub.",
        environ=environ,
    )
    add_options(parser, ProducerSettings)
    # Only there to say where the key goes instead.
    parser.add_argument("--finnhub-api-key", default=None, help=argparse.SUPPRESS)
    return parser


def env_names() -> list[str]:
    """Every environment variable the producer reads."""
    return [opt.env for _, opt in options_of(ProducerSettings)] + [FINNHUB_KEY_ENV]


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ProducerSettings:
    """Flags, then environment, then defaults; exits with code 2 and one line if wrong."""
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    if args.finnhub_api_key:
        parser.error(
            f"pass the Finnhub key in the {FINNHUB_KEY_ENV} environment variable, not a flag"
        )
    key = _finnhub_key(parser, environ)
    try:
        return settings_from(ProducerSettings, args, finnhub_api_key=key)
    except ValueError as e:
        parser.error(str(e))


def _finnhub_key(parser: EnvArgumentParser, environ: Mapping[str, str]) -> Secret | None:
    value = environ.get(FINNHUB_KEY_ENV, "").strip()
    if not value:
        return None
    if not _API_KEY.match(value):
        _key_error(parser)
    return Secret(value)


def _key_error(parser: EnvArgumentParser) -> NoReturn:
    # Unlike other variables, the value is not shown: it is a secret.
    parser.exit(
        2,
        f"{parser.prog}: error: environment variable {FINNHUB_KEY_ENV}: not a usable key "
        "(printable characters without spaces, at most 256); value not shown\n",
    )
