"""`python -m producer backfill AAPL MSFT --range 5d --interval 1m`: fetch a source's history of
these symbols once and publish it to the bars topic (storage keeps it in `bars`).

Every option of `python -m producer` applies (source, Kafka, source URLs, HTTP limits), with
their environment twins; the backfill options are spelled shorter here (--range, --interval,
--pause) and read the same variables (BACKFILL_RANGE, BACKFILL_INTERVAL, BACKFILL_PAUSE). Exit
0 when every request was answered and every bar acknowledged by Kafka, 1 otherwise, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from common.contract import ContractError, parse_symbols
from common.logs import configure_logging
from common.settings import EnvArgumentParser, add_option, format_duration, options_of
from producer.backfill import Backfill
from producer.publisher import Publisher, PublishError
from producer.settings import ProducerSettings
from producer.sources import build_source
from producer.stats import ProducerCounters

PROG = "python -m producer backfill"
logger = logging.getLogger("producer.backfill")

# The producer's options spelled as a backfill names them; options of a live run only are left
# out (they keep their defaults).
_RENAMED = {"backfill_range_ms": "--range", "backfill_interval": "--interval",
            "backfill_pause_ms": "--pause"}  # fmt: skip
_LIVE_ONLY = {"listed_symbols", "file_symbols", "interval_ms", "max_ticks", "coordinator",
              "fleet_chroot", "session_timeout_ms", "sim_rate", "sim_start_ms",
              "replay_speed", "stats_interval_ms", "backfill_daily_range_ms"}  # fmt: skip


def _symbol_list(text: str) -> list[str]:
    try:
        return parse_symbols(text)
    except ContractError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog=PROG,
        description="Fetch the history of these symbols from the source as bars and publish "
        "them to the bars topic, keyed by symbol. Publishing the same range again stores "
        "nothing new: a bar's identity is (symbol, interval, start).",
        epilog="Sources: yahoo (1m for the last 30 days, at most 7 a request; 5m for 60 days; "
        "1d for decades), stooq (1d), simulated (any: a deterministic past), replay (the "
        "file's ticks as bars, whatever the range). finnhub serves no history on its free tier.",
        environ=environ,
    )
    parser.add_argument("symbols", nargs="+", type=_symbol_list,
                        help="symbols, comma or space separated")  # fmt: skip
    for name, opt in options_of(ProducerSettings):
        if name in _LIVE_ONLY:
            continue
        if name in _RENAMED:
            opt = dataclasses.replace(opt, flag=_RENAMED[name])
        add_option(parser, opt, name)
    return parser


def parse(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[ProducerSettings, list[str]]:
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    symbols = list(dict.fromkeys(s for group in args.symbols for s in group))
    defaults = {f.name: f.default for f in dataclasses.fields(ProducerSettings)}
    values = {name: getattr(args, name, defaults[name]) for name, _ in options_of(ProducerSettings)}
    if not values["backfill_range_ms"]:
        parser.error("--range must be above 0 for a backfill")
    values["listed_symbols"] = tuple(symbols)
    try:
        settings = ProducerSettings(**values)
    except ValueError as e:
        parser.error(str(e))
    return settings, symbols


def main(argv: Sequence[str] | None = None) -> int:
    settings, symbols = parse(sys.argv[2:] if argv is None else argv)
    configure_logging(settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    counters = ProducerCounters()
    source = build_source(settings, stop)
    publisher = Publisher(settings, counters, source.name)
    backfill = Backfill(source, publisher, counters, stop, settings.backfill_pause_ms / 1000)
    problem = backfill.check(settings.backfill_interval, settings.backfill_range_ms)
    if problem is not None:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    began = time.monotonic()
    try:
        publisher.open()
    except PublishError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    unaccounted = False
    try:
        result = backfill.run(symbols, settings.backfill_interval, settings.backfill_range_ms)
    finally:
        try:
            publisher.close()
        except PublishError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            unaccounted = True
        close = getattr(source, "close", None)
        if close is not None:
            close()
    took = time.monotonic() - began
    print(
        f"backfill source={source.name} symbols={len(symbols)} interval="
        f"{settings.backfill_interval} range={format_duration(settings.backfill_range_ms)} "
        f"bars={result.bars} rejected={result.rejected} empty={result.empty} "
        f"failed={result.failed} delivery_failed={counters.delivery_failed} "
        f"requests={result.requests} took_s={took:.1f}"
    )
    for symbol, reason in result.failures.items():
        print(f"  {symbol}: {reason}", file=sys.stderr)
    lost = result.failed or counters.delivery_failed or unaccounted
    return 1 if lost or stop.is_set() else 0
