"""One logging setup for every entry point: timestamped key=value lines on stderr."""

from __future__ import annotations

import logging
import sys
import time

from common.contract import clip

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format=_FORMAT, stream=sys.stderr, force=True)
    # The clients are chatty at INFO about every reconnect; their warnings still show.
    for noisy in ("kafka", "cassandra", "py4j"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


class Throttled:
    """Log lines that input causes (a dead letter, a refused record), bounded whatever comes in:
    each line clipped to `max_chars`, and of each kind of line the first `first`, then at most
    one per `every_s` seconds, saying how many were left out meanwhile."""

    def __init__(
        self, logger: logging.Logger, first: int = 20, every_s: float = 10.0, max_chars: int = 2000
    ):
        self._logger = logger
        self._first = first
        self._every_s = every_s
        self._max_chars = max_chars
        # message template -> (lines asked for, left out since the last one, when last logged)
        self._seen: dict[str, tuple[int, int, float]] = {}

    def warning(self, msg: str, *args: object) -> None:
        self._log(logging.WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._log(logging.ERROR, msg, args)

    def _log(self, level: int, msg: str, args: tuple[object, ...]) -> None:
        count, skipped, last = self._seen.get(msg, (0, 0, 0.0))
        count += 1
        now = time.monotonic()
        if count > self._first and now - last < self._every_s:
            self._seen[msg] = (count, skipped + 1, last)
            return
        self._seen[msg] = (count, 0, now)
        if not self._logger.isEnabledFor(level):
            return
        try:
            text = msg % args
        except (TypeError, ValueError) as e:
            text = f"{msg} (could not format: {e})"
        note = f" ({skipped} like this left out)" if skipped else ""
        self._logger.log(level, "%s%s", clip(text, self._max_chars), note)
