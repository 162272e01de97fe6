"""The consumer loop: poll a batch, store it (retrying while Cassandra is away), then commit.

At-least-once by construction: offsets are committed only after every record of the batch is
either written to Cassandra or delivered to the dead-letter topic. A crash before the commit
means the batch is delivered again, and every write is idempotent (same key, or a write
timestamp fixed by the data), so a replay overwrites rather than duplicates.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from cassandra import DriverException, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from storage.dead_letters import DeadLetterError, DeadLetterSink
from storage.decode import Decoded, decode
from storage.writer import CassandraWriter, WriteError, WritesRefused

logger = logging.getLogger(__name__)

# What a retry can cure: the node is down, overloaded or restarting, or Kafka is briefly away.
RETRYABLE = (WriteError, DeadLetterError, NoHostAvailable, DriverException,
             RequestExecutionException)  # fmt: skip
_REPORT_EVERY_S = 30.0
# A commit blocks until Kafka answers; bounded, so a stop request is not held up for ever.
_COMMIT_TIMEOUT_MS = 30_000


class Backoff:
    """Exponential delays: initial, 2x, 4x ... capped at maximum."""

    def __init__(self, initial_s: float = 0.5, maximum_s: float = 10.0):
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._next = initial_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum_s)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s


@dataclass
class Counters:
    batches: int = 0
    ticks: int = 0
    aggregates: int = 0
    refused: int = 0
    retries: int = 0


class StorageLoop:
    def __init__(
        self,
        consumer: Any,
        writer: CassandraWriter,
        dead_letters: DeadLetterSink,
        *,
        ticks_topic: str,
        aggregates_topic: str,
        batch_size: int,
        stop: threading.Event,
        backoff: Backoff | None = None,
        poll_timeout_ms: int = 500,
    ):
        self._consumer = consumer
        self._writer = writer
        self._dead_letters = dead_letters
        self._ticks_topic = ticks_topic
        self._aggregates_topic = aggregates_topic
        self._batch_size = batch_size
        self._stop = stop
        self._backoff = backoff or Backoff()
        self._poll_timeout_ms = poll_timeout_ms
        self.counters = Counters()
        self._reported_at = time.monotonic()

    def run(self) -> Counters:
        logger.info("consuming topics=%s,%s", self._ticks_topic, self._aggregates_topic)
        while not self._stop.is_set():
            self.step()
            self._report()
        logger.info("stopped %s", _kv(self.counters))
        return self.counters

    def step(self) -> int:
        """One batch: poll, store, commit. Returns the number of records committed."""
        batch = self._consumer.poll(timeout_ms=self._poll_timeout_ms, max_records=self._batch_size)
        if not batch:
            return 0
        decoded = decode(batch, self._ticks_topic, self._aggregates_topic)
        try:
            stored = self._store(decoded)
        except Exception:
            # Nothing that a record holds should get here (the contract refuses it first); if
            # something does, the service must not die with the batch: read it again later.
            logger.exception("batch not stored (unexpected error); reading it again")
            self.counters.retries += 1
            self._rewind(decoded)
            self._stop.wait(self._backoff.next())
            return 0
        if not stored:
            return 0
        self.commit(decoded.next_offsets)
        c = self.counters
        c.batches += 1
        c.ticks += len(decoded.ticks)
        c.aggregates += len(decoded.aggregates)
        c.refused += len(decoded.refused)
        logger.debug(
            "batch stored records=%d ticks=%d aggregates=%d refused=%d",
            decoded.records, len(decoded.ticks), len(decoded.aggregates), len(decoded.refused),
        )  # fmt: skip
        return decoded.records

    def _store(self, decoded: Decoded) -> bool:
        """Dead letters, then rows; retried until done. False if stopped before it was done."""
        dead_letters_pending = bool(decoded.refused)
        paused = False
        self._backoff.reset()
        try:
            while True:
                try:
                    if dead_letters_pending:
                        self._dead_letters.send(decoded.refused)
                        dead_letters_pending = False
                    try:
                        self._writer.write(decoded.ticks, decoded.aggregates)
                    except WritesRefused as e:
                        logger.warning("%s; writing the batch row by row", e)
                        self._write_each(decoded)
                    if paused:
                        logger.info("writes succeed again; resuming consumption")
                    return True
                except RETRYABLE as e:
                    self.counters.retries += 1
                    delay = self._backoff.next()
                    logger.warning(
                        "batch not stored, retrying in %.1fs without consuming meanwhile "
                        "records=%d error=%s: %s",
                        delay, decoded.records, type(e).__name__, e,
                    )  # fmt: skip
                    if not paused:
                        self._consumer.pause(*self._consumer.assignment())
                        paused = True
                    if self._stop.wait(delay):
                        logger.warning(
                            "stopping before the batch was stored: its offsets are not "
                            "committed, so it will be delivered again records=%d",
                            decoded.records,
                        )
                        return False
                    self._stay_in_group()
        finally:
            if paused:
                self._consumer.resume(*self._consumer.paused())

    def _write_each(self, decoded: Decoded) -> None:
        refused = self._writer.write_each(decoded.ticks, decoded.aggregates)
        sources = {"tick": decoded.tick_sources, "aggregate": decoded.aggregate_sources}
        letters = [sources[r.kind][r.index].refused(r.reason) for r in refused]
        # Delivered before the commit like every dead letter; a failure here retries the batch.
        self._dead_letters.send(letters)
        self.counters.refused += len(letters)

    def _rewind(self, decoded: Decoded) -> None:
        for tp, offset in decoded.first_offsets.items():
            try:
                self._consumer.seek(tp, offset)
            except Exception as e:  # noqa: BLE001 - e.g. the partition was revoked meanwhile
                logger.warning("could not rewind %s to %d: %r", tp, offset, e)

    def _stay_in_group(self) -> None:
        # Polling keeps this consumer in its group during a long outage (max.poll.interval.ms).
        # Every assigned partition is paused, but one assigned by a rebalance meanwhile is not:
        # anything it returns is put back, so that no record is skipped.
        for tp, records in self._consumer.poll(timeout_ms=0).items():
            if records:
                self._consumer.seek(tp, records[0].offset)
        self._consumer.pause(*self._consumer.assignment())

    def commit(self, next_offsets: dict[Any, int]) -> None:
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in next_offsets.items()}
        try:
            self._consumer.commit(offsets, timeout_ms=_COMMIT_TIMEOUT_MS)
        except CommitFailedError as e:
            # The group rebalanced: another member will read these records again. They are
            # stored already, and writing them again changes nothing.
            logger.warning("offsets not committed, the group rebalanced: %s", e)
        except KafkaError as e:
            logger.warning("offsets not committed (the next batch's commit covers them): %r", e)

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._reported_at >= _REPORT_EVERY_S:
            self._reported_at = now
            logger.info("progress %s", _kv(self.counters))


def _kv(counters: Counters) -> str:
    return " ".join(f"{k}={v}" for k, v in vars(counters).items())
