"""The contract's own verdict on a Kafka record, for the records the JVM fast path did not accept.

Spark runs these as Python UDFs on those records only (see processor.validation): a refused
record gets its reason and becomes a dead letter; a valid tick in a shape the fast path does not
read (spaces, reordered fields, escapes) is accepted here. "Now" for the contract's "not more
than a day in the future" check is the record's Kafka timestamp, not the wall clock, so the
verdict depends on the record only and a replay after a restart decides the same way.
"""

from __future__ import annotations

from typing import Any

from common.contract import ContractError, Tick, dead_letter, dead_letter_key
from processor import worker_imports

# This module is what a worker imports to run the UDFs: the first task there installs this.
worker_imports.install()

STAGE = "processor"

# (symbol, price, volume, ts, seq, error): the shape of the verdict UDF's struct.
Verdict = tuple[str | None, float | None, int | None, int | None, int | None, str | None]
_REFUSED: tuple[None, ...] = (None, None, None, None, None)


def _now(kafka_ts_ms: int | None) -> int | None:
    return kafka_ts_ms if kafka_ts_ms is not None and kafka_ts_ms > 0 else None


def verdict(
    key: bytes | bytearray | None, value: bytes | bytearray | None, kafka_ts_ms: int | None
) -> Verdict:
    """The tick's fields and error None, or Nones and the reason it breaks the contract."""
    try:
        tick = Tick.from_record(
            None if key is None else bytes(key),
            None if value is None else bytes(value),
            now=_now(kafka_ts_ms),
        )
    except ContractError as e:
        return (*_REFUSED, str(e))
    return (tick.symbol, tick.price, tick.volume, tick.ts, tick.seq, None)


def dead_letter_record(
    key: bytes | bytearray | None,
    value: bytes | bytearray | None,
    kafka_ts_ms: int | None,
    topic: str,
    partition: int,
    offset: int,
) -> tuple[bytes | None, bytes] | None:
    """The dead letter's Kafka key and value (common.contract.dead_letter, bounded whatever the
    record holds) for a refused record; None for a valid tick."""
    raw_key = None if key is None else bytes(key)
    reason = verdict(raw_key, value, kafka_ts_ms)[-1]
    if reason is None:
        return None
    origin: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
    payload = None if value is None else bytes(value)
    return dead_letter_key(raw_key), dead_letter(STAGE, reason, origin, payload, raw_key)
