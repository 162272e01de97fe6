"""The verdict on one Kafka record: a valid tick, or the reason it is refused.

Spark runs these functions as Python UDFs, so the contract module stays the one definition of a
valid tick. Both queries (aggregates and dead letters) call the same `verdict`, so every record
lands in exactly one of them. "Now" for the contract's "not more than a day in the future" check
is the record's Kafka timestamp, not the wall clock: the verdict then depends on the record only,
and a replay after a restart decides the same way.
"""

from __future__ import annotations

from typing import Any

from common.contract import ContractError, Tick, dead_letter

# Spark stores volume and seq as 64-bit longs; a bigger number would fail the whole batch.
LONG_MAX = 2**63 - 1

# (symbol, price, volume, ts, seq, error): the shape of the parsing UDF's struct.
Verdict = tuple[str | None, float | None, int | None, int | None, int | None, str | None]
_REFUSED: tuple[None, ...] = (None, None, None, None, None)


def verdict(value: bytes | bytearray | None, kafka_ts_ms: int | None) -> Verdict:
    """The tick's fields and error None, or Nones and the reason it breaks the contract."""
    if value is None:
        return (*_REFUSED, "empty message: the record has no value")
    now = kafka_ts_ms if kafka_ts_ms is not None and kafka_ts_ms > 0 else None
    try:
        tick = Tick.from_json(bytes(value), now=now)
    except ContractError as e:
        return (*_REFUSED, str(e))
    except Exception as e:  # noqa: BLE001 - an exception in a UDF stops the query; refuse instead
        # e.g. RecursionError on deeply nested JSON, OverflowError on a price like 1e999999.
        return (*_REFUSED, f"unreadable message: {type(e).__name__}: {e}"[:300])
    for name in ("volume", "seq"):
        if getattr(tick, name) > LONG_MAX:
            return (*_REFUSED, f"{name} {getattr(tick, name)} is too large (limit {LONG_MAX})")
    return (tick.symbol, tick.price, tick.volume, tick.ts, tick.seq, None)


def dead_letter_payload(
    value: bytes | bytearray | None,
    kafka_ts_ms: int | None,
    topic: str,
    partition: int,
    offset: int,
) -> bytes | None:
    """The dead-letter record for a refused message; None for a valid tick."""
    reason = verdict(value, kafka_ts_ms)[-1]
    if reason is None:
        return None
    origin: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
    return dead_letter(reason, None if value is None else bytes(value), origin)
