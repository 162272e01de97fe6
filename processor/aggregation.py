"""The Spark side of the aggregation: Kafka records -> valid ticks -> windowed aggregates.

The same rules as common.reference (read its docstring); this module only says them in Spark.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from processor import parsing

VERDICT_TYPE = T.StructType(
    [
        T.StructField("symbol", T.StringType()),
        T.StructField("price", T.DoubleType()),
        T.StructField("volume", T.LongType()),
        T.StructField("ts", T.LongType()),
        T.StructField("seq", T.LongType()),
        T.StructField("error", T.StringType()),
    ]
)

# The Aggregate JSON fields, in the contract's order.
AGGREGATE_FIELDS = ("symbol", "window_ms", "window_start", "window_end", "open", "high", "low",
                    "close", "avg", "vwap", "volume", "count")  # fmt: skip


@cache
def _udfs():
    # Lambdas: pyspark reads type hints as a request for pandas UDFs, which these are not.
    verdict = F.udf(lambda value, ts: parsing.verdict(value, ts), VERDICT_TYPE)
    dead_letter = F.udf(
        lambda value, ts, topic, partition, offset: parsing.dead_letter_payload(
            value, ts, topic, partition, offset
        ),
        T.BinaryType(),
    )
    return verdict, dead_letter


def _kafka_ts_ms() -> Column:
    return F.unix_millis(F.col("timestamp"))


def valid_ticks(records: DataFrame) -> DataFrame:
    """symbol, price, volume, ts, seq of the records that satisfy the contract."""
    verdict, _ = _udfs()
    checked = records.select(verdict(F.col("value"), _kafka_ts_ms()).alias("t"))
    return checked.where(F.col("t.error").isNull()).select(
        "t.symbol", "t.price", "t.volume", "t.ts", "t.seq"
    )


def dead_letters(records: DataFrame) -> DataFrame:
    """key (the original key) and value (common.contract.dead_letter JSON) of refused records."""
    _, dead_letter = _udfs()
    payload = dead_letter(
        F.col("value"), _kafka_ts_ms(), F.col("topic"), F.col("partition"), F.col("offset")
    )
    return (
        records.select(F.col("key"), payload.alias("value"))
        .where(F.col("value").isNotNull())
        .observe("dead_letters", F.count(F.lit(1)).alias("count"))
    )


def aggregates(ticks: DataFrame, windows_ms: Sequence[int], watermark_ms: int) -> DataFrame:
    """One row per (symbol, window size, window) in the contract's Aggregate shape."""
    timed = ticks.withColumn("event_time", F.timestamp_millis("ts")).withWatermark(
        "event_time", f"{watermark_ms} milliseconds"
    )
    # Structs compare field by field: min/max of (ts, seq, price) pick the first and last tick
    # by event time, then seq (order within one millisecond), then price (only for duplicates).
    order = F.struct("ts", "seq", "price")
    parts = []
    for window_ms in windows_ms:
        grouped = timed.groupBy(
            F.col("symbol"), F.window("event_time", f"{window_ms} milliseconds").alias("window")
        ).agg(
            F.min(order).alias("first"),
            F.max(order).alias("last"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.avg("price").alias("avg"),
            F.sum(F.col("price") * F.col("volume")).alias("price_volume"),
            F.sum("volume").alias("volume"),
            F.count(F.lit(1)).alias("count"),
        )
        parts.append(
            grouped.select(
                F.col("symbol"),
                F.lit(window_ms).cast("long").alias("window_ms"),
                F.unix_millis(F.col("window.start")).alias("window_start"),
                F.unix_millis(F.col("window.end")).alias("window_end"),
                F.col("first.price").alias("open"),
                F.col("high"),
                F.col("low"),
                F.col("last.price").alias("close"),
                F.col("avg"),
                F.when(F.col("volume") > 0, F.col("price_volume") / F.col("volume"))
                .otherwise(F.col("avg"))
                .alias("vwap"),
                F.col("volume"),
                F.col("count"),
            )
        )
    return reduce(DataFrame.unionByName, parts)


def to_kafka(aggs: DataFrame) -> DataFrame:
    """key = symbol, value = Aggregate JSON, as the Kafka sink wants them."""
    return aggs.select(
        F.col("symbol").alias("key"),
        F.to_json(F.struct(*[F.col(name) for name in AGGREGATE_FIELDS])).alias("value"),
    )
