"""The consumer loop: poll a batch, store it (retrying while Cassandra is away), then commit.

At-least-once by construction: offsets are committed only after every record of the batch is
either written to Cassandra or delivered to the dead-letter topic. A crash before the commit
means the batch is delivered again, and every write is idempotent (same key, or a write
timestamp fixed by the data), so a replay overwrites rather than duplicates.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from cassandra import DriverException, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from common.contract import short
from common.counters import Counters, Every
from common.logs import Throttled
from common.polling import Backoff, poll_paced
from storage.dead_letters import DeadLetterError, DeadLetterSink
from storage.decode import Decoded, decode
from storage.writer import CassandraWriter, WriteError, WritesRefused

logger = logging.getLogger(__name__)

# What a retry can cure: the node is down, overloaded or restarting, or Kafka is briefly away.
RETRYABLE = (WriteError, DeadLetterError, NoHostAvailable, DriverException,
             RequestExecutionException)  # fmt: skip
_REPORT_EVERY_S = 30.0
# Unexpected failures of a batch in a row before it is stored one record at a time.
MAX_UNEXPECTED_FAILURES = 3
# A commit blocks until Kafka answers; bounded, so a stop request is not held up for ever.
_COMMIT_TIMEOUT_MS = 30_000


@dataclass
class StorageCounters(Counters):
    """What the loop did; logged as one progress line every half minute."""

    batches: int = 0
    ticks: int = 0
    aggregates: int = 0
    bars: int = 0
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
        bars_topic: str | None = None,
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
        self._bars_topic = bars_topic
        self._batch_size = batch_size
        self._stop = stop
        self._backoff = backoff or Backoff()
        self._kafka_backoff = Backoff(initial_s=0.5, maximum_s=5.0)
        self._poll_timeout_ms = poll_timeout_ms
        self.counters = StorageCounters()
        self._progress_due = Every(_REPORT_EVERY_S)
        self._unexpected_failures = 0
        self._log = Throttled(logger)

    def run(self) -> StorageCounters:
        topics = (self._ticks_topic, self._aggregates_topic, self._bars_topic)
        logger.info("consuming topics=%s", ",".join(t for t in topics if t))
        while not self._stop.is_set():
            self.step()
            self._report()
        logger.info("stopped %s", self.counters.line())
        return self.counters

    def step(self) -> int:
        """One batch: poll, store, commit. Returns the number of records committed."""
        try:
            batch = poll_paced(self._consumer, self._poll_timeout_ms, self._stop,
                               max_records=self._batch_size)  # fmt: skip
        except KafkaError as e:
            if not e.retriable:
                raise
            # kafka-python 3 lets a failed metadata refresh out of poll() while every broker is
            # down: the outage is waited out here, and poll() resumes where the consumer was.
            self._log.warning("Kafka not reachable, polling again: %r", e)
            self._stop.wait(self._kafka_backoff.next())
            return 0
        self._kafka_backoff.reset()
        if not batch:
            return 0
        decoded = decode(batch, self._ticks_topic, self._aggregates_topic, self._bars_topic)
        one_by_one = self._unexpected_failures >= MAX_UNEXPECTED_FAILURES
        try:
            stored = self._store_each(decoded) if one_by_one else self._store(decoded)
        except Exception as e:
            # Nothing that a record holds should get here (the contract refuses it first); if
            # something does, the service must not die with the batch: read it again, and after
            # MAX_UNEXPECTED_FAILURES in a row, store it one record at a time (_store_each).
            self._unexpected_failures += 1
            self.counters.retries += 1
            self._log.error(
                "batch not stored (unexpected error %d in a row), reading it again%s: %s: %s",
                self._unexpected_failures,
                ""
                if one_by_one
                else f", one record at a time after {MAX_UNEXPECTED_FAILURES} in a row",
                type(e).__name__,
                short(str(e), 500),
            )
            logger.debug("unexpected error", exc_info=True)
            self._rewind(decoded)
            self._stop.wait(self._backoff.next())
            return 0
        if not stored:
            return 0
        self._unexpected_failures = 0
        self.commit(decoded.next_offsets)
        c = self.counters
        c.batches += 1
        c.ticks += len(decoded.ticks)
        c.aggregates += len(decoded.aggregates)
        c.bars += len(decoded.bars)
        c.refused += len(decoded.refused)
        logger.debug(
            "batch stored records=%d ticks=%d aggregates=%d refused=%d",
            decoded.records, len(decoded.ticks), len(decoded.aggregates), len(decoded.refused),
        )  # fmt: skip
        return decoded.records

    def _store(self, decoded: Decoded) -> bool:
        """Dead letters, then rows; retried until done. False if stopped before it was done."""
        pending = list(decoded.refused)
        paused = False
        self._backoff.reset()
        try:
            while True:
                try:
                    if pending:
                        self._dead_letters.send(pending)
                        pending = []
                    try:
                        self._writer.write(decoded.ticks, decoded.aggregates, decoded.bars)
                    except WritesRefused as e:
                        logger.warning("%s; writing the batch row by row", short(str(e), 500))
                        self._write_each(decoded)
                    if paused:
                        logger.info("writes succeed again; resuming consumption")
                    return True
                except RETRYABLE as e:
                    if isinstance(e, DeadLetterError):
                        # Only the ones Kafka did not acknowledge: no dead letter twice.
                        pending = e.pending
                    self.counters.retries += 1
                    delay = self._backoff.next()
                    logger.warning(
                        "batch not stored, retrying in %.1fs without consuming meanwhile "
                        "records=%d error=%s: %s",
                        delay, decoded.records, type(e).__name__, short(str(e), 500),
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

    def _store_each(self, decoded: Decoded) -> bool:
        """The batch one record at a time, after it failed unexpectedly again and again: a
        record that fails alone is dead-lettered with the error, so that the batch is never
        retried for ever. Outages still wait and retry, as in _store."""
        logger.warning("storing a batch one record at a time records=%d", decoded.records)
        if not self._store(Decoded(refused=list(decoded.refused))):
            return False
        ticks = zip(decoded.ticks, decoded.tick_sources, strict=True)
        aggregates = zip(decoded.aggregates, decoded.aggregate_sources, strict=True)
        bars = zip(decoded.bars, decoded.bar_sources, strict=True)
        singles = [Decoded(ticks=[t], tick_sources=[s]) for t, s in ticks]
        singles += [Decoded(aggregates=[a], aggregate_sources=[s]) for a, s in aggregates]
        singles += [Decoded(bars=[b], bar_sources=[s]) for b, s in bars]
        for single in singles:
            source = (single.tick_sources or single.aggregate_sources or single.bar_sources)[0]
            try:
                if not self._store(single):
                    return False
            except Exception as e:  # noqa: BLE001 - this record's own failure: dead-lettered
                reason = f"storage failed on this record: {type(e).__name__}: {short(str(e), 300)}"
                if not self._store(Decoded(refused=[source.refused(reason)])):
                    return False
                self.counters.refused += 1
        return True

    def _write_each(self, decoded: Decoded) -> None:
        refused = self._writer.write_each(decoded.ticks, decoded.aggregates, decoded.bars)
        sources = {"tick": decoded.tick_sources, "aggregate": decoded.aggregate_sources,
                   "bar": decoded.bar_sources}  # fmt: skip
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
        if self._progress_due.due():
            logger.info("progress %s", self.counters.line())
