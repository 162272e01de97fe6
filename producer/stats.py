"""Counters of one producer run, and the log line that shows them."""

from __future__ import annotations

from dataclasses import dataclass

from common.counters import Counters


@dataclass
class ProducerCounters(Counters):
    """What happened to what a source gave. Written by the fetch loop (and `delivery_failed` by
    the Kafka client's sender thread); read for the periodic log line and the exit summary."""

    fetched: int = 0  # ticks the source gave (valid or not)
    published: int = 0  # ticks handed to Kafka
    rejected: int = 0  # input sent to the dead-letter topic (contract failures, bad bodies)
    failed: int = 0  # requests that got no usable answer
    unchanged: int = 0  # quotes already sent (same timestamp), not sent again
    empty: int = 0  # answers with no data for a symbol
    delivery_failed: int = 0  # records Kafka did not acknowledge
    dead_letters_slimmed: int = 0  # dead letters Kafka refused for good, sent metadata only
    bars: int = 0  # history bars handed to Kafka (backfill); last: log parsers read the rest
