"""The processor's plan: Kafka records -> verdict -> deduplicated ticks -> windowed aggregates, and
refused records -> dead letters, as one streaming DataFrame for one Kafka sink.

The same rules as common.reference (read its docstring); this module only says them in Spark.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common import contract
from processor import parsing, validation

# What Spark reads to find an event-time column: a grouping or deduplication key carrying it is
# evicted from the state store, and its late rows dropped, once the key's time (a struct's second
# field: a window's end) is at or before the watermark. EventTimeWatermark.delayKey in Spark.
_WATERMARK_DELAY_KEY = "spark.watermarkDelayMs"

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
TICK_COLUMNS = ("symbol", "price", "volume", "ts", "seq")
DEAD_LETTERS_METRIC = "dead_letters"


@cache
def _udfs():
    # Lambdas: pyspark reads type hints as a request for pandas UDFs, which these are not.
    verdict = F.udf(lambda key, value, ts: parsing.verdict(key, value, ts), VERDICT_TYPE)
    dead_letter = F.udf(
        lambda key, value, ts, topic, partition, offset: parsing.dead_letter_payload(
            key, value, ts, topic, partition, offset
        ),
        T.BinaryType(),
    )
    return verdict, dead_letter


def judged(records: DataFrame) -> DataFrame:
    """The Kafka records with `fast`: the fast path's tick struct, or null (see validation)."""
    timed = records.select(
        "key",
        "value",
        "topic",
        "partition",
        "offset",
        F.unix_millis(F.col("timestamp")).alias("kafka_ts"),
    )
    return validation.with_fast_tick(timed, "key", "value", "kafka_ts")


def valid_ticks(checked: DataFrame) -> DataFrame:
    """symbol, price, volume, ts, seq of every record the contract accepts (`checked`: judged())."""
    fast = checked.where(F.col("fast").isNotNull()).select("fast.*")
    verdict, _ = _udfs()
    # Python sees only what the fast path did not accept: nearly always refused records.
    rescued = (
        checked.where(F.col("fast").isNull())
        .select(verdict("key", "value", "kafka_ts").alias("t"))
        .where(F.col("t.error").isNull())
        .select(*[f"t.{c}" for c in TICK_COLUMNS])
    )
    return fast.unionByName(rescued)


def dead_letters(checked: DataFrame) -> DataFrame:
    """key (the original key) and value (common.contract.dead_letter JSON) of refused records
    (`checked`: judged())."""
    _, dead_letter = _udfs()
    payload = dead_letter("key", "value", "kafka_ts", "topic", "partition", "offset")
    return (
        checked.where(F.col("fast").isNull())
        .select(F.col("key"), payload.alias("value"))
        .where(F.col("value").isNotNull())
        .observe(DEAD_LETTERS_METRIC, F.count(F.lit(1)).alias("count"))
    )


def _window(start_ms: Column, size_ms: Column, watermark_ms: int) -> Column:
    """A window struct (start, end) that Spark's watermark treats as F.window's output."""
    return F.struct(
        F.timestamp_millis(start_ms).alias("start"),
        F.timestamp_millis(start_ms + size_ms).alias("end"),
    ).alias("window", metadata={_WATERMARK_DELAY_KEY: watermark_ms})


def aggregates(ticks: DataFrame, windows_ms: Sequence[int], watermark_ms: int) -> DataFrame:
    """One row per (symbol, window size, window) in the contract's Aggregate shape, every window
    size in one grouping, each tick identity counted once.

    Rows whose sums would not fit the contract's Aggregate (volume beyond a long, count beyond
    MAX_AGGREGATE_COUNT) keep `volume` null: the sink turns them into dead letters.
    """
    ts = F.col("ts")
    timed = ticks.withColumn("event_time", F.timestamp_millis(ts)).withWatermark(
        "event_time", f"{watermark_ms} milliseconds"
    )
    # A redelivered tick has the same identity (symbol, ts, seq): keep the first. Its identity is
    # remembered until the last of its windows closes (the latest window end over the sizes),
    # so a copy arriving any time a window could still count it is dropped; after that, the
    # copy is late for every window anyway.
    ends = [ts - ts % w + w for w in windows_ms]
    last_end = ends[0] if len(ends) == 1 else F.greatest(*ends)
    deduplicated = timed.select(
        *TICK_COLUMNS, _window(last_end - max(windows_ms), F.lit(max(windows_ms)), watermark_ms)
    ).dropDuplicates(["symbol", "ts", "seq", "window"])
    # Every window size at once: one row per (tick, size), then one grouping.
    sizes = F.explode(F.array(*[F.lit(w).cast("long") for w in windows_ms])).alias("window_ms")
    exploded = deduplicated.select(*TICK_COLUMNS, sizes)
    size = F.col("window_ms")
    keyed = exploded.select(*TICK_COLUMNS, "window_ms", _window(ts - ts % size, size, watermark_ms))
    # Structs compare field by field: min/max of (ts, seq, price) pick the first and last tick
    # by event time, then seq (order within one millisecond), then price (only for duplicates).
    order = F.struct("ts", "seq", "price")
    grouped = keyed.groupBy("symbol", "window_ms", "window").agg(
        F.min(order).alias("first"),
        F.max(order).alias("last"),
        F.max("price").alias("high"),
        F.min("price").alias("low"),
        F.avg("price").alias("avg"),
        # Bounded by the contract (price*volume <= 10^21 a tick): a double sum cannot overflow.
        F.sum(F.col("price") * F.col("volume")).alias("price_volume"),
        # A second guard behind the contract's bounds: null instead of failing the batch.
        F.try_sum("volume").alias("volume"),
        F.count(F.lit(1)).alias("count"),
    )
    fits = F.col("volume").isNotNull() & (F.col("count") <= contract.MAX_AGGREGATE_COUNT)
    return grouped.select(
        F.col("symbol"),
        F.col("window_ms"),
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
        F.when(fits, F.col("volume")).alias("volume"),
        F.col("count"),
    )


def aggregates_to_kafka(
    aggs: DataFrame, aggregates_topic: str, dead_letter_topic: str
) -> DataFrame:
    """Aggregate JSON to the aggregates topic; a window whose sums overflow to the dead letters."""
    fits = F.col("volume").isNotNull()
    record = F.to_json(F.struct(*[F.col(name) for name in contract.AGGREGATE_FIELDS]))
    refused = F.to_json(
        F.struct(
            F.lit("the window's volume or count exceeds what an aggregate holds").alias("reason"),
            F.struct(F.col("symbol"), F.col("window_ms"), F.col("window_start")).alias("origin"),
            F.lit(parsing.STAGE).alias("stage"),
            F.lit("").alias("payload"),
            F.unix_millis(F.current_timestamp()).alias("refused_at"),
        )
    )
    return aggs.select(
        F.when(fits, F.lit(aggregates_topic)).otherwise(F.lit(dead_letter_topic)).alias("topic"),
        # message_key(symbol): the symbol's UTF-8 bytes.
        F.encode(F.col("symbol"), "UTF-8").alias("key"),
        F.when(fits, record).otherwise(refused).cast("binary").alias("value"),
    )


def plan(
    records: DataFrame,
    windows_ms: Sequence[int],
    watermark_ms: int,
    aggregates_topic: str,
    dead_letter_topic: str,
) -> DataFrame:
    """topic, key, value for the Kafka sink: aggregates (update mode) and dead letters.

    One query, one offset range per batch, but three branches over the judged records
    (fast-path ticks, ticks only the contract's Python accepts, dead letters): Spark runs the
    batch's scan and the JVM verdict once per branch (see processor/README.md, Performance).
    """
    checked = judged(records)
    aggs = aggregates(valid_ticks(checked), windows_ms, watermark_ms)
    letters = dead_letters(checked).select(
        F.lit(dead_letter_topic).alias("topic"), F.col("key"), F.col("value")
    )
    return aggregates_to_kafka(aggs, aggregates_topic, dead_letter_topic).unionByName(letters)
