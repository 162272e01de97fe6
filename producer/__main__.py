"""python -m producer: fetch prices for the symbols you name and publish them to Kafka."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading

from common.fleet import connect
from common.logs import configure_logging
from common.settings import fail
from producer.backfill import Backfill, Follower
from producer.fleet import Fleet
from producer.publisher import Publisher, PublishError
from producer.runner import runner_for
from producer.settings import DEFAULT_SYMBOLS, ProducerSettings, parse_settings
from producer.sources import build_source
from producer.stats import ProducerCounters

logger = logging.getLogger("producer")
# A stop's steps beside the flush (the history follower, leaving the fleet) are bounded at 10 s
# each; past the stop timeout plus this, something has hung.
STOP_MARGIN_S = 30.0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["symbols"]:
        from producer.symbols_cli import main as symbols_main

        return symbols_main(argv[1:])
    if argv[:1] == ["backfill"]:
        from producer.backfill_cli import main as backfill_main

        return backfill_main(argv[1:])
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            logger.error("signal=%s again: exiting now; what Kafka has not acknowledged is lost",
                         name)  # fmt: skip
            os._exit(1)
        logger.info("signal=%s: stopping, then flushing (at most %.0fs)", name,
                    settings.stop_timeout_ms / 1000)  # fmt: skip
        stop.set()
        stop_deadline(settings.stop_timeout_ms / 1000 + STOP_MARGIN_S)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    counters = ProducerCounters()
    source = build_source(settings, stop)
    publisher = Publisher(settings, counters, source.name)
    logger.info(
        "starting source=%s symbols=%s bootstrap=%s topic=%s",
        settings.source,
        ",".join(settings.symbols) if settings.symbols_given or settings.source != "replay"
        else "(all in the file)",
        settings.bootstrap_servers,
        settings.ticks_topic,
    )  # fmt: skip
    fleet = join_fleet(settings, source.name) if settings.coordinator else None
    if fleet is not None:
        publisher.publish_as(fleet.name)
    follower = history_follower(settings, publisher, counters)
    try:
        runner = runner_for(settings, source, publisher, counters, stop, fleet=fleet,
                            follower=follower)  # fmt: skip
        runner.run()
    except PublishError as e:
        logger.error("%s", e)
        return 1
    finally:
        if fleet is not None:
            fleet.close()
    return 1 if counters.delivery_failed else 0


def stop_deadline(seconds: float) -> None:
    """The last word on a stop: if the process has not exited `seconds` from now, every thread's
    stack goes to stderr and it exits 1. Each step of the stop has a bound of its own; this is
    for one that turns out not to, so that a stop never hangs, and shows where it would have."""
    faulthandler.dump_traceback_later(seconds, exit=True)


def history_follower(
    settings: ProducerSettings, publisher: Publisher, counters: ProducerCounters
) -> Follower | None:
    """What backfills each symbol as it is followed (BACKFILL_RANGE), on a source of its own;
    None when the range is 0 or the source keeps no bars of BACKFILL_INTERVAL (said why)."""
    if not settings.backfill_range_ms:
        return None
    halt = threading.Event()
    source = build_source(settings, halt)
    backfill = Backfill(source, publisher, counters, halt, settings.backfill_pause_ms / 1000)
    problem = backfill.check(settings.backfill_interval, settings.backfill_range_ms)
    if problem is not None:
        logger.warning("no history at start: %s (set BACKFILL_INTERVAL, or BACKFILL_RANGE=0)",
                       problem)  # fmt: skip
        close = getattr(source, "close", None)
        if close is not None:
            close()  # a polled source's HTTP session, built for nothing
        return None
    return Follower(backfill, settings.backfill_interval, settings.backfill_range_ms, halt,
                    settings.backfill_daily_range_ms)  # fmt: skip


def join_fleet(settings: ProducerSettings, source: str) -> Fleet:
    """This producer as a member of the fleet at settings.coordinator; exits 1 with one line
    when ZooKeeper cannot be reached."""
    from kazoo.exceptions import KazooException
    from kazoo.handlers.threading import KazooTimeoutError

    try:
        client = connect(settings.coordinator, settings.fleet_chroot,
                         settings.session_timeout_ms / 1000)  # fmt: skip
    except (KazooException, KazooTimeoutError, OSError) as e:
        fail("python -m producer", f"cannot join the fleet at ZooKeeper {settings.coordinator} "
             f"({type(e).__name__}: {e}); is it running? (--coordinator none: run alone)",
             code=1)  # fmt: skip
    fleet = Fleet(client, source)
    fleet.start(settings.symbols if settings.symbols_given else None, default=DEFAULT_SYMBOLS)
    return fleet


if __name__ == "__main__":
    sys.exit(main())
