"""Kafka records to contract objects; whatever breaks the contract becomes a dead letter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.contract import Aggregate, Bar, ContractError, Tick, dead_letter, decode_bars

STAGE = "storage"


@dataclass(frozen=True)
class Refused:
    """A record that cannot be stored, with why and where it came from."""

    reason: str
    key: bytes | None
    payload: bytes | None
    origin: dict[str, Any]

    def to_dead_letter(self, slim: bool = False) -> bytes:
        return dead_letter(STAGE, self.reason, self.origin, self.payload, self.key, slim=slim)


@dataclass(frozen=True)
class Source:
    """Where a stored tick or aggregate came from, kept in case Cassandra refuses its row."""

    key: bytes | None
    payload: bytes | None
    origin: dict[str, Any]

    def refused(self, reason: str) -> Refused:
        return Refused(reason, self.key, self.payload, self.origin)


@dataclass
class Decoded:
    ticks: list[Tick] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    # Parallel to ticks and aggregates: the record each one was read from.
    tick_sources: list[Source] = field(default_factory=list)
    aggregate_sources: list[Source] = field(default_factory=list)
    bar_sources: list[Source] = field(default_factory=list)
    # The offset to commit per partition once this batch is stored: last offset + 1.
    next_offsets: dict[Any, int] = field(default_factory=dict)
    # The first offset per partition: where to read again if the batch cannot be handled.
    first_offsets: dict[Any, int] = field(default_factory=dict)

    # Kafka records read (a bars record holds many bars).
    count: int = 0

    @property
    def records(self) -> int:
        return self.count


def decode(
    batch: Mapping[Any, Iterable[Any]],
    ticks_topic: str,
    aggregates_topic: str,
    bars_topic: str | None = None,
    now: int | None = None,
) -> Decoded:
    """Sort a poll's records into ticks, aggregates, bars and refusals (never raises on bad
    data).

    A record is judged by the contract alone: its value must be a valid tick (or aggregate)
    and its key the symbol, as every producer of these topics writes them.
    """
    out = Decoded()
    for tp, records in batch.items():
        for record in records:
            out.count += 1
            out.next_offsets[tp] = max(out.next_offsets.get(tp, 0), record.offset + 1)
            out.first_offsets[tp] = min(out.first_offsets.get(tp, record.offset), record.offset)
            source = Source(
                record.key,
                record.value,
                {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            )
            try:
                if record.topic == ticks_topic:
                    out.ticks.append(Tick.from_record(record.key, record.value, now))
                    out.tick_sources.append(source)
                elif record.topic == aggregates_topic:
                    out.aggregates.append(Aggregate.from_record(record.key, record.value, now))
                    out.aggregate_sources.append(source)
                elif record.topic == bars_topic:
                    bars = decode_bars(record.key, record.value, now)
                    out.bars.extend(bars)
                    # Each bar keeps its record: a row Cassandra refuses dead-letters it.
                    out.bar_sources.extend([source] * len(bars))
                else:
                    raise ContractError(f"record from unexpected topic {record.topic!r}")
            except ContractError as e:
                out.refused.append(source.refused(str(e)))
    return out
