"""One logging setup for every entry point: timestamped key=value lines on stderr."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format=_FORMAT, stream=sys.stderr, force=True)
    # The clients are chatty at INFO about every reconnect; their warnings still show.
    for noisy in ("kafka", "cassandra", "py4j"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
