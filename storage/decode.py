"""Kafka records to contract objects; whatever breaks the contract becomes a dead letter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.contract import Aggregate, Tick, dead_letter


@dataclass(frozen=True)
class Refused:
    """A record that cannot be stored, with why and where it came from."""

    reason: str
    key: bytes | None
    payload: bytes | None
    origin: dict[str, Any]

    def to_dead_letter(self) -> bytes:
        return dead_letter(self.reason, self.payload, self.origin)


@dataclass
class Decoded:
    ticks: list[Tick] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    # The offset to commit per partition once this batch is stored: last offset + 1.
    next_offsets: dict[Any, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return len(self.ticks) + len(self.aggregates) + len(self.refused)


def decode(
    batch: Mapping[Any, Iterable[Any]],
    ticks_topic: str,
    aggregates_topic: str,
    now: int | None = None,
) -> Decoded:
    """Sort a poll's records into ticks, aggregates and refusals (never raises on bad data)."""
    out = Decoded()
    for tp, records in batch.items():
        for record in records:
            out.next_offsets[tp] = max(out.next_offsets.get(tp, 0), record.offset + 1)
            origin = {"topic": record.topic, "partition": record.partition,
                      "offset": record.offset}  # fmt: skip
            try:
                if record.value is None:
                    raise ValueError("empty message (null value)")
                if record.topic == ticks_topic:
                    out.ticks.append(Tick.from_json(record.value, now))
                elif record.topic == aggregates_topic:
                    out.aggregates.append(Aggregate.from_json(record.value, now))
                else:
                    raise ValueError(f"record from unexpected topic {record.topic!r}")
            except (ValueError, TypeError) as e:
                # ContractError is a ValueError; TypeError covers shapes the contract did not
                # foresee. Either way the record is refused, not the service stopped.
                out.refused.append(Refused(str(e), record.key, record.value, origin))
    return out
