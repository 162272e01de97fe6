"""python -m producer: fetch prices for the symbols you name and publish them to Kafka."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from common.logs import configure_logging
from producer.publisher import Publisher, PublishError
from producer.runner import runner_for
from producer.settings import parse_settings
from producer.sources import build_source
from producer.stats import ProducerCounters

logger = logging.getLogger("producer")


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("signal=%s: stopping, then flushing", signal.Signals(signum).name)
        stop.set()

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
    try:
        runner_for(settings, source, publisher, counters, stop).run()
    except PublishError as e:
        logger.error("%s", e)
        return 1
    return 1 if counters.delivery_failed else 0


if __name__ == "__main__":
    sys.exit(main())
