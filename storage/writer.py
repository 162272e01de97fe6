"""Writing ticks, aggregates and bars to Cassandra: prepared statements, executed concurrently."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cassandra import InvalidRequest
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

from common.contract import Aggregate, Bar, Tick
from common.settings import KEYSPACE_PATTERN
from storage import rows

logger = logging.getLogger(__name__)

# Ticks of one partition go in one unlogged batch: a single mutation for the replica and one
# request for the driver, several times faster than a request per row. Cassandra's batch-size
# thresholds apply only to batches that span partitions (CASSANDRA-10876); 100 rows is ~7 KiB.
ROWS_PER_BATCH = 100
# A bar row is ~60 bytes and a backfill's bars arrive by the partition-full: bigger batches,
# fewer requests (measured with make bench-history: 100 -> 18.3k bars/s, 400 -> see README).
BARS_PER_BATCH = 400


class WriteError(RuntimeError):
    """Some writes of a batch failed. Every write is idempotent: retry the whole batch."""


class WritesRefused(WriteError):
    """Cassandra refused writes as invalid: retrying the same rows cannot help.

    The contract's bounds keep every value storable, so this is a second guard: the caller
    writes the batch row by row (write_each) and dead-letters the rows that are refused.
    """


# What the driver raises when a value cannot be serialised for its column type.
_UNBINDABLE = (struct.error, TypeError, ValueError, OverflowError)


def is_row_refusal(error: BaseException) -> bool:
    """Cassandra found the row itself invalid (not the schema missing, nor the node away)."""
    if not isinstance(error, InvalidRequest):
        return False
    text = str(error).lower()
    # A missing table or keyspace refuses every row: that is the deployment's fault, and the
    # rows must wait for the schema, not be dead-lettered.
    return "unconfigured table" not in text and "does not exist" not in text


@dataclass(frozen=True)
class RefusedRow:
    kind: str  # "tick", "aggregate" or "bar"
    index: int  # position in the list given to write_each
    reason: str


@dataclass(frozen=True)
class WriteResult:
    ticks: int
    aggregates: int
    latest: int
    requests: int
    bars: int = 0


class CassandraWriter:
    def __init__(
        self,
        session: Any,
        keyspace: str,
        *,
        ticks_ttl_s: int = 0,
        aggregates_ttl_s: int = 0,
        concurrency: int = 32,
        rows_per_batch: int = ROWS_PER_BATCH,
    ):
        if not KEYSPACE_PATTERN.match(keyspace):
            raise ValueError(f"keyspace name {keyspace!r} is not [a-z][a-z0-9_]{{0,47}}")
        self._session = session
        self._keyspace = keyspace
        self._ticks_ttl_s = ticks_ttl_s
        self._aggregates_ttl_s = aggregates_ttl_s
        self._concurrency = concurrency
        self._rows_per_batch = rows_per_batch
        self._insert_tick: Any = None
        self._insert_latest: Any = None
        self._insert_aggregate: Any = None
        self._insert_bar: Any = None

    def prepare(self) -> CassandraWriter:
        ks = self._keyspace  # validated in __init__: identifiers cannot be bind markers
        self._insert_tick = self._prepare(
            f"INSERT INTO {ks}.ticks (symbol, day, ts, seq, price, volume, source) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?"
        )
        self._insert_latest = self._prepare(
            f"INSERT INTO {ks}.latest_prices (symbol, price, volume, ts, seq, source) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._insert_aggregate = self._prepare(
            f"INSERT INTO {ks}.aggregates (symbol, window_ms, day, window_start, window_end, "  # noqa: S608
            "open, high, low, close, avg, vwap, volume, count, written_at) "
            # written_at is the coordinator's clock: WRITETIME of this row is a version number.
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, toTimestamp(now())) "
            "USING TIMESTAMP ? AND TTL ?"
        )
        self._insert_bar = self._prepare(
            f"INSERT INTO {ks}.bars (symbol, interval, bucket, start, open, high, low, close, "  # noqa: S608
            "volume, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        return self

    def _prepare(self, cql: str) -> Any:
        statement = self._session.prepare(cql)
        # Same key, same values (or a fixed write timestamp): replaying a write is harmless.
        statement.is_idempotent = True
        return statement

    def write(
        self, ticks: Sequence[Tick], aggregates: Sequence[Aggregate], bars: Sequence[Bar] = ()
    ) -> WriteResult:
        """Store everything, or raise WriteError. Returns what was written."""
        if self._insert_tick is None:
            raise RuntimeError("call prepare() before writing")
        unique = rows.unique_ticks(ticks)
        newest = rows.newest_per_symbol(unique)
        final = rows.final_aggregates(aggregates)
        history = rows.unique_bars(bars)
        # A generator: the driver sends the first statements while the next are being built.
        statements = ((s, None) for s in self._statements(unique, newest, final, history))
        try:
            results = execute_concurrent(
                self._session,
                statements,
                concurrency=self._concurrency,
                raise_on_first_error=False,
            )
        except _UNBINDABLE as e:
            # The driver could not serialise a value for its column: that row's fault.
            raise WritesRefused(f"a value does not fit its column: {type(e).__name__}: {e}") from e
        failures = [r for ok, r in results if not ok]
        if failures and all(is_row_refusal(f) for f in failures):
            raise WritesRefused(
                f"Cassandra refused {len(failures)} of {len(results)} writes as invalid, "
                f"first: {type(failures[0]).__name__}: {failures[0]}"
            )
        if failures:
            raise WriteError(
                f"{len(failures)} of {len(results)} writes failed, first: "
                f"{type(failures[0]).__name__}: {failures[0]}"
            )
        return WriteResult(len(unique), len(final), len(newest), len(results), len(history))

    def write_each(
        self, ticks: Sequence[Tick], aggregates: Sequence[Aggregate], bars: Sequence[Bar] = ()
    ) -> list[RefusedRow]:
        """Write row by row; return the rows Cassandra refuses as invalid.

        Raises WriteError if a write fails for any other reason (the node is away): the caller
        retries the batch as usual.
        """
        refused: list[RefusedRow] = []
        for i, tick in enumerate(ticks):
            reason = self._execute_each(
                (self._insert_tick, rows.tick_values(tick, self._ticks_ttl_s)),
                (self._insert_latest, rows.latest_values(tick)),
            )
            if reason:
                refused.append(RefusedRow("tick", i, reason))
        for i, agg in enumerate(aggregates):
            values = rows.aggregate_values(agg, self._aggregates_ttl_s)
            reason = self._execute_each((self._insert_aggregate, values))
            if reason:
                refused.append(RefusedRow("aggregate", i, reason))
        for i, bar in enumerate(bars):
            reason = self._execute_each((self._insert_bar, rows.bar_values(bar)))
            if reason:
                refused.append(RefusedRow("bar", i, reason))
        return refused

    def _execute_each(self, *writes: tuple[Any, tuple]) -> str | None:
        for prepared, values in writes:
            try:
                statement = prepared.bind(values)
            except _UNBINDABLE as e:
                return f"a value does not fit its column: {type(e).__name__}: {e}"
            try:
                self._session.execute(statement)
            except InvalidRequest as e:
                if not is_row_refusal(e):
                    raise WriteError(f"write failed: {e}") from e
                return f"Cassandra refused the row: {type(e).__name__}: {e}"
            except Exception as e:  # noqa: BLE001 - anything else: the node, not the row
                raise WriteError(f"write failed: {type(e).__name__}: {e}") from e
        return None

    def _statements(
        self,
        ticks: Sequence[Tick],
        newest: Sequence[Tick],
        aggregates: Sequence[Aggregate],
        bars: Sequence[Bar] = (),
    ) -> Iterator[Any]:
        for chunk in rows.by_partition(ticks, self._rows_per_batch):
            if len(chunk) == 1:
                yield self._insert_tick.bind(rows.tick_values(chunk[0], self._ticks_ttl_s))
                continue
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for tick in chunk:
                batch.add(self._insert_tick, rows.tick_values(tick, self._ticks_ttl_s))
            batch.is_idempotent = True
            yield batch
        for tick in newest:
            yield self._insert_latest.bind(rows.latest_values(tick))
        for agg in aggregates:
            yield self._insert_aggregate.bind(rows.aggregate_values(agg, self._aggregates_ttl_s))
        # A backfill's bars come a symbol at a time, oldest first: whole partitions per batch.
        for chunk in rows.bars_by_partition(bars, BARS_PER_BATCH):
            if len(chunk) == 1:
                yield self._insert_bar.bind(rows.bar_values(chunk[0]))
                continue
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for bar in chunk:
                batch.add(self._insert_bar, rows.bar_values(bar))
            batch.is_idempotent = True
            yield batch
