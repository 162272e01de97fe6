"""The contract's verdict on a Kafka record, said in Spark Column expressions (no Python per tick).

Two judges, one verdict:
- `fast_tick` runs in the JVM for every record. It accepts a record only when its value is a tick
  in the contract's wire shape (`Tick.to_json`: the fields of TICK_FIELDS in that order, compact,
  strings without escapes), parsed with `from_json` and an explicit schema, every number inside
  the contract's bounds, and the key equal to `message_key(symbol)`. Everything it needs is
  generated from common.contract's constants; nothing is retyped here.
- Every record the fast path does not accept goes to `common.contract.Tick.from_record` (a Python
  UDF, see processor.parsing), which gives the reason for a dead letter, or accepts a valid tick
  written in another shape (spaces, reordered fields, escapes, a UTF-8 BOM...).

So the verdict is the contract's by construction, as long as the fast path never accepts what the
contract refuses and gives the same fields when both accept: tests/integration/processor/
test_verdict.py checks exactly that, record for record, on hostile and generated records. Python
never sees a tick the producer wrote. "Now" for "not more than a day in the future" is the
record's Kafka timestamp, so the verdict depends on the record alone; a record without a usable
timestamp (<= 0) is left to the Python judge, which then uses the wall clock.
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common import contract

# JSON's number grammar (RFC 8259), which is also what Python's json module reads (besides NaN
# and Infinity, which the fast path leaves to the contract). An integer has no fraction or
# exponent: the contract wants an int for ts, and takes whole floats for volume and seq.
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_INTEGER = r"-?(?:0|[1-9][0-9]*)"
# Printable ASCII except the quote and the backslash: a string spelled with these needs no
# decoding, so the fast path reads it exactly as json.loads does (and it holds no surrogate).
_PLAIN_CHAR = r"[ !#-\[\]-~]"


# The column with_jvm_tick adds: the tick the JVM accepted, or null.
JVM_TICK = "jvm_tick"


def _symbol_chars() -> str:
    """SYMBOL_PATTERN without its anchors: the same class and length, as a Java regex."""
    pattern = contract.SYMBOL_PATTERN.pattern
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"SYMBOL_PATTERN {pattern!r} is not anchored: cannot embed it")
    return pattern[1:-1]


# How each tick field is spelled on the fast path, and the Spark type from_json reads it as.
# volume and seq are read as doubles: the contract takes 5 and 5.0 alike (a whole float), and
# every value within its bounds (at most 10^12 < 2^53) is exact as a double.
_FIELD_TOKENS = {
    "symbol": (f'"{_symbol_chars()}"', T.StringType()),
    "price": (_NUMBER, T.DoubleType()),
    "volume": (_NUMBER, T.DoubleType()),
    "ts": (_INTEGER, T.LongType()),
    "source": (f'"{_PLAIN_CHAR}{{1,{contract.MAX_SOURCE_CHARS}}}"', T.StringType()),
    "seq": (_NUMBER, T.DoubleType()),
}


def wire_pattern() -> str:
    """A Java regex for the wire shape of a tick, built from TICK_FIELDS and the required ones.

    A field the contract does not require may be left out (seq defaults to 0).
    """
    if set(_FIELD_TOKENS) != set(contract.TICK_FIELDS):
        raise ValueError(
            f"fast path spells {sorted(_FIELD_TOKENS)}, ticks have {contract.TICK_FIELDS}"
        )
    first, *rest = contract.TICK_FIELDS
    if first not in contract.TICK_REQUIRED_FIELDS:
        raise ValueError(f"the first tick field {first!r} must be required")
    parts = [f'"{first}":{_FIELD_TOKENS[first][0]}']
    for name in rest:
        part = f',"{re.escape(name)}":{_FIELD_TOKENS[name][0]}'
        parts.append(part if name in contract.TICK_REQUIRED_FIELDS else f"(?:{part})?")
    return r"\A\{" + "".join(parts) + r"\}\z"


def tick_schema() -> T.StructType:
    return T.StructType([T.StructField(n, _FIELD_TOKENS[n][1]) for n in contract.TICK_FIELDS])


def _whole_within(column: Column, limit: int) -> Column:
    # The contract's _count: a whole number (a whole float counts) from 0 to the limit.
    return (column == F.floor(column)) & column.between(0, float(limit))


def with_jvm_tick(records: DataFrame, key: str, value: str, kafka_ts: str) -> DataFrame:
    """`records` plus `fast`: a struct (symbol, price, volume, ts, seq) for a record the fast path
    accepts, else null. `kafka_ts` names the record's Kafka timestamp (epoch ms) column.

    In three steps, so that the parse and the regex run once per record: Spark does not fold a
    projection into the next when that would repeat an expensive expression. (Filters on `fast`
    stay above the exchange aggregation.behind_one_exchange() puts after this.)
    """
    text = F.col(value).cast("string")
    parsed = records.select(
        "*",
        F.from_json(text, tick_schema()).alias("_parsed"),
        text.rlike(wire_pattern()).alias("_shaped"),
    )
    p = F.col("_parsed")
    now = F.col(kafka_ts)
    seq = F.coalesce(p["seq"], F.lit(0.0))
    accepted = (
        F.col(value).isNotNull()
        & (F.octet_length(F.col(value)) <= contract.MAX_MESSAGE_BYTES)
        & F.col("_shaped")
        & p["symbol"].isNotNull()
        & p["source"].isNotNull()
        # between() also refuses NaN (Spark orders NaN above every number) and nulls.
        & p["price"].between(contract.MIN_PRICE, contract.MAX_PRICE)
        & _whole_within(p["volume"], contract.MAX_VOLUME)
        & _whole_within(seq, contract.MAX_SEQ)
        & (now > 0)
        & p["ts"].between(F.lit(contract.EARLIEST_TS_MS), now + contract.MAX_FUTURE_MS)
        # check_key: the key is message_key(symbol), i.e. the symbol's UTF-8 bytes.
        & F.col(key).isNotNull()
        & (F.col(key) == F.encode(p["symbol"], "UTF-8"))
    )
    judged = parsed.select("*", F.coalesce(accepted, F.lit(False)).alias("_accepted"))
    fields = F.struct(
        p["symbol"].alias("symbol"),
        p["price"].alias("price"),
        p["volume"].cast("long").alias("volume"),
        p["ts"].alias("ts"),
        seq.cast("long").alias("seq"),
    )
    # when() evaluates the casts only for accepted rows, whose values are in range (ANSI casts
    # would fail the batch on anything else).
    return judged.select(*records.columns, F.when(F.col("_accepted"), fields).alias(JVM_TICK))
