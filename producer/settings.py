"""The producer's settings: every flag, its environment twin, and the one frozen object they make.

`parse_settings` is the only place that looks at the command line and the environment; every
impossible value or combination is refused here, with exit code 2 and a message that says what to
do, so nothing later has to second-guess its configuration.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common.contract import DEAD_LETTER_TOPIC, TICKS_TOPIC, ContractError, parse_symbols
from common.settings import (
    EnvArgumentParser,
    add_kafka_options,
    add_log_level,
    duration_ms,
    non_negative_int,
    positive_int,
)

SOURCES = ("simulated", "yahoo", "stooq", "finnhub", "replay")
POLLED_SOURCES = ("yahoo", "stooq", "finnhub")
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA")
# A Kafka topic name: what the broker accepts (letters, digits, . _ -; at most 249 characters).


class Secret:
    """A value that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ProducerSettings:
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    # Replay publishes every row of its file unless symbols were named explicitly.
    symbols_given: bool = False
    source: str = "simulated"
    interval_ms: int = 5_000
    bootstrap_servers: str = "127.0.0.1:9092"
    ticks_topic: str = TICKS_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    topic_partitions: int = 3
    topic_replication: int = 1
    finnhub_api_key: Secret | None = None
    yahoo_base_url: str = "https://query1.finance.yahoo.com"
    stooq_base_url: str = "https://stooq.com"
    finnhub_base_url: str = "https://finnhub.io"
    replay_file: Path | None = None
    replay_speed: float = 1.0  # 0 = as fast as possible
    sim_seed: int = 42
    sim_rate: float = 10.0  # ticks/s over all symbols; 0 = as fast as possible
    sim_start_ms: int | None = None  # anchor of the simulated clock; None = the start time
    max_ticks: int = 0  # 0 = no limit
    log_level: str = "INFO"
    stats_interval_ms: int = 30_000
    kafka_linger_ms: int = 20
    kafka_batch_size: int = 256 * 1024
    kafka_compression: str | None = "gzip"
    http_timeout_ms: int = 10_000
    http_retries: int = 3
    http_backoff_ms: int = 500

    @property
    def polled(self) -> bool:
        return self.source in POLLED_SOURCES


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL like https://host:port")
    return text.rstrip("/")


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


def _one_of(names: tuple[str, ...]):
    # A type, not `choices`: argparse checks choices on flags only, never on an env default.
    def check(text: str) -> str:
        value = text.strip().lower()
        if value not in names:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(names)}")
        return value

    check.__name__ = "choice"
    return check


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    p = EnvArgumentParser(
        prog="python -m producer",
        description="Fetch prices for the symbols you name and publish them to Kafka as ticks "
        "(the tick contract's JSON, keyed by symbol). Every flag has an environment twin.",
        epilog="FINNHUB_API_KEY (environment only, never a flag, never logged): the key "
        "for --source finnhub.",
        environ=environ,
    )
    add = p.add_env_argument
    add(
        "--symbols",
        env="SYMBOLS",
        default=None,
        help=f"symbols, comma or space separated (default: {','.join(DEFAULT_SYMBOLS)}; "
        "replay: every symbol in the file)",
    )
    add(
        "--symbols-file",
        env="SYMBOLS_FILE",
        type=Path,
        default=None,
        help="a file of symbols, one or more per line, '#' starts a comment; adds to --symbols",
    )
    add(
        "--source",
        env="PRICE_SOURCE",
        default="simulated",
        type=_one_of(SOURCES),
        metavar="{" + ",".join(SOURCES) + "}",
        help="where prices come from",
    )
    add(
        "--interval",
        env="FETCH_INTERVAL",
        type=duration_ms,
        default="5",
        help="seconds between fetch rounds of the polled sources (5, 500ms, 1m); raised to the "
        "source's minimum so a free API is not hammered",
    )
    add(
        "--stats-interval",
        env="STATS_INTERVAL",
        type=duration_ms,
        default="30",
        help="seconds between counter log lines",
    )
    add(
        "--max-ticks",
        env="MAX_TICKS",
        type=non_negative_int,
        default=0,
        help="stop after this many ticks (0: run until stopped)",
    )
    add_log_level(p)
    add_kafka_options(p, "ticks", "dead-letter")
    add(
        "--topic-partitions",
        env="TOPIC_PARTITIONS",
        type=positive_int,
        default=3,
        help="partitions of the topics created at start when missing",
    )
    add(
        "--topic-replication",
        env="TOPIC_REPLICATION",
        type=positive_int,
        default=1,
        help="replication factor of the topics created at start when missing",
    )
    add(
        "--kafka-linger-ms",
        env="KAFKA_LINGER_MS",
        type=non_negative_int,
        default=20,
        help="how long the client waits to fill a batch",
    )
    add(
        "--kafka-batch-size",
        env="KAFKA_BATCH_SIZE",
        type=positive_int,
        default=256 * 1024,
        help="bytes per partition batch",
    )
    add(
        "--kafka-compression",
        env="KAFKA_COMPRESSION",
        default="gzip",
        type=_one_of(COMPRESSIONS),
        metavar="{" + ",".join(COMPRESSIONS) + "}",
        help="batch compression",
    )

    add(
        "--yahoo-base-url",
        env="YAHOO_BASE_URL",
        type=_url,
        default="https://query1.finance.yahoo.com",
        help="Yahoo Finance chart API",
    )
    add(
        "--stooq-base-url",
        env="STOOQ_BASE_URL",
        type=_url,
        default="https://stooq.com",
        help="Stooq CSV quotes",
    )
    add(
        "--finnhub-base-url",
        env="FINNHUB_BASE_URL",
        type=_url,
        default="https://finnhub.io",
        help="Finnhub REST API",
    )
    # The key is only ever read from the environment: a flag would show in `ps` and shell history.
    p.add_argument("--finnhub-api-key", default=None, help=argparse.SUPPRESS)
    add(
        "--http-timeout",
        env="HTTP_TIMEOUT",
        type=duration_ms,
        default="10",
        help="seconds to wait for a source to connect and to answer",
    )
    add(
        "--http-retries",
        env="HTTP_RETRIES",
        type=non_negative_int,
        default=3,
        help="retries of a request that got 429, 5xx or a timeout (exponential backoff, "
        "jitter, Retry-After honoured)",
    )
    add(
        "--http-backoff",
        env="HTTP_BACKOFF",
        type=duration_ms,
        default="500ms",
        help="first retry delay; doubles each retry",
    )

    add(
        "--replay-file",
        env="REPLAY_FILE",
        type=Path,
        default=None,
        help="CSV of symbol,timestamp,price[,volume] for --source replay",
    )
    add(
        "--replay-speed",
        env="REPLAY_SPEED",
        type=_speed,
        default="1",
        help="1 real time, 10 ten times faster, 0 or max as fast as possible",
    )
    add(
        "--sim-seed",
        env="SIM_SEED",
        type=int,
        default=42,
        help="seed of the simulated prices (same seed, same ticks)",
    )
    add(
        "--sim-rate",
        env="SIM_RATE",
        type=_rate,
        default="10",
        help="simulated ticks per second over all symbols; 0 = as fast as possible",
    )
    add(
        "--sim-start",
        env="SIM_START",
        type=non_negative_int,
        default=None,
        help="epoch ms the simulated clock starts at (default: now)",
    )
    return p  # fmt: skip


def _read_symbols_file(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    return " ".join(line.split("#", 1)[0] for line in lines)


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ProducerSettings:
    """Flags, then environment, then defaults; exits with code 2 and a clear message if wrong."""
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    args = parser.parse_args(argv)

    text = args.symbols or ""
    if args.symbols_file is not None:
        try:
            text += " " + _read_symbols_file(args.symbols_file)
        except OSError as e:
            parser.error(f"--symbols-file {args.symbols_file}: {e.strerror or e}")
    symbols_given = bool(text.strip())
    try:
        symbols = tuple(parse_symbols(text)) if symbols_given else DEFAULT_SYMBOLS
    except ContractError as e:
        parser.error(f"--symbols: {e}")
    if args.symbols_file is not None and not symbols_given:
        parser.error(f"--symbols-file {args.symbols_file} holds no symbols")

    key = environ.get("FINNHUB_API_KEY", "").strip() or None
    if args.finnhub_api_key:
        parser.error("pass the Finnhub key in the FINNHUB_API_KEY environment variable, not a flag")
    if args.source == "finnhub" and key is None:
        parser.error("--source finnhub needs an API key: set FINNHUB_API_KEY (free at finnhub.io)")
    if args.source == "replay":
        if args.replay_file is None:
            parser.error("--source replay needs --replay-file (or REPLAY_FILE): a CSV to replay")
        if not args.replay_file.is_file():
            parser.error(f"--replay-file {args.replay_file} is not a readable file")
    compression = None if args.kafka_compression == "none" else args.kafka_compression
    if compression is not None:
        from kafka import codec

        if not getattr(codec, f"has_{compression}")():
            parser.error(
                f"--kafka-compression {compression}: its Python library is not installed; "
                "use gzip or none"
            )

    return ProducerSettings(
        symbols=symbols,
        symbols_given=symbols_given,
        source=args.source,
        interval_ms=args.interval,
        bootstrap_servers=args.bootstrap_servers,
        ticks_topic=args.ticks_topic,
        dead_letter_topic=args.dead_letter_topic,
        topic_partitions=args.topic_partitions,
        topic_replication=args.topic_replication,
        finnhub_api_key=Secret(key) if key else None,
        yahoo_base_url=args.yahoo_base_url,
        stooq_base_url=args.stooq_base_url,
        finnhub_base_url=args.finnhub_base_url,
        replay_file=args.replay_file,
        replay_speed=args.replay_speed,
        sim_seed=args.sim_seed,
        sim_rate=args.sim_rate,
        sim_start_ms=args.sim_start,
        max_ticks=args.max_ticks,
        log_level=args.log_level,
        stats_interval_ms=args.stats_interval,
        kafka_linger_ms=args.kafka_linger_ms,
        kafka_batch_size=args.kafka_batch_size,
        kafka_compression=compression,
        http_timeout_ms=args.http_timeout,
        http_retries=args.http_retries,
        http_backoff_ms=args.http_backoff,
    )
