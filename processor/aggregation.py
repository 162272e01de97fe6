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
# What parsing.dead_letter_record gives: the dead letter's Kafka key and value.
DEAD_LETTER_TYPE = T.StructType(
    [T.StructField("key", T.BinaryType()), T.StructField("value", T.BinaryType())]
)
DEAD_LETTERS_METRIC = "dead_letters"
# The column of a record's tick as the JVM accepted it (validation.with_jvm_tick), null when
# the JVM did not: such a record is the Python verdict's to judge (a rescued tick or a dead letter).
JVM_TICK = validation.JVM_TICK
# A column added only for a filter to read: see behind_one_exchange.
_PARTITION_ID = "_partition_id"
# Ticks in one window are ordered by (ts, seq) packed in one long: (ts - window start) below a
# day (< 2^27 ms, the longest window) times 2^31, plus seq (< 2^31). One long lets min_by/max_by
# pick open and close in a hash aggregation; a struct of (ts, seq) would force a sort per batch.
_SEQ_SPAN = contract.MAX_SEQ + 1


@cache
def _udfs():
    # Lambdas: pyspark reads type hints as a request for pandas UDFs, which these are not.
    # Marked nondeterministic so that the optimizer calls each once per record: a filter on a
    # deterministic UDF's result is pushed below the projection and the UDF called twice.
    verdict = F.udf(lambda key, value, ts: parsing.verdict(key, value, ts), VERDICT_TYPE)
    dead_letter = F.udf(
        lambda key, value, ts, topic, partition, offset: parsing.dead_letter_record(
            key, value, ts, topic, partition, offset
        ),
        DEAD_LETTER_TYPE,
    )
    return verdict.asNondeterministic(), dead_letter.asNondeterministic()


def with_jvm_verdict(records: DataFrame) -> DataFrame:
    """The Kafka records with JVM_TICK: the tick the JVM accepted, or null (see validation)."""
    timed = records.select(
        "key",
        "value",
        "topic",
        "partition",
        "offset",
        F.unix_millis(F.col("timestamp")).alias("kafka_ts"),
    )
    return validation.with_jvm_tick(timed, "key", "value", "kafka_ts")


def behind_one_exchange(checked: DataFrame, partitions: int) -> DataFrame:
    """`checked` (with_jvm_verdict()) behind one exchange that every branch of the plan reads.

    Spark runs the part of a plan that a union's branches share once per branch: here the Kafka
    scan and the verdict, three times a batch. Branches that read one and the same exchange share
    its output instead (ReusedExchange: one shuffle written, read three times). Two things would
    make the three exchanges differ, and are stopped above it: filters pushed below it (a
    nondeterministic column stops them) and columns pruned below it (a filter reading every
    column keeps them). A tick's raw key and value are dropped before the shuffle: only refused
    records need them again.
    """
    refused = F.col(JVM_TICK).isNull()
    raw = ("key", "value")
    slim = checked.select(
        *[F.when(refused, F.col(c)).alias(c) if c in raw else F.col(c) for c in checked.columns]
    )
    # Always true; it reads every column (so none is pruned below the exchange) and a
    # nondeterministic one (so no filter is pushed below it).
    reads_every_column = F.col(_PARTITION_ID) >= 0
    for name in checked.columns:
        reads_every_column = reads_every_column & (F.col(name).isNull() | F.col(name).isNotNull())
    return (
        # Hash, not round robin: a round-robin repartition sorts each partition first.
        slim.repartition(partitions, "offset")
        .select("*", F.spark_partition_id().alias(_PARTITION_ID))
        .where(reads_every_column)
        .drop(_PARTITION_ID)
    )


def valid_ticks(checked: DataFrame) -> DataFrame:
    """symbol, price, volume, ts, seq of every record the contract accepts (`checked`:
    with_jvm_verdict() records; behind_one_exchange() ones in the query)."""
    accepted = checked.where(F.col(JVM_TICK).isNotNull()).select(f"{JVM_TICK}.*")
    verdict, _ = _udfs()
    # Python sees only what the fast path did not accept: nearly always refused records, so
    # one task (one Python worker) per batch rather than one per partition.
    rescued = (
        checked.where(F.col(JVM_TICK).isNull())
        .coalesce(1)
        .select(verdict("key", "value", "kafka_ts").alias("t"))
        .where(F.col("t.error").isNull())
        .select(*[f"t.{c}" for c in TICK_COLUMNS])
    )
    return accepted.unionByName(rescued)


def dead_letters(checked: DataFrame) -> DataFrame:
    """key and value of the dead letter (common.contract.dead_letter) of each refused record
    (`checked`: with_jvm_verdict() records; behind_one_exchange() ones in the query)."""
    _, dead_letter = _udfs()
    letter = dead_letter("key", "value", "kafka_ts", "topic", "partition", "offset")
    return (
        checked.where(F.col(JVM_TICK).isNull())
        .coalesce(1)
        .select(letter.alias("letter"))
        .where(F.col("letter").isNotNull())
        .select("letter.key", "letter.value")
        .observe(DEAD_LETTERS_METRIC, F.count(F.lit(1)).alias("count"))
    )


def _jvm_dead_letter(reason: str, origin: Column) -> Column:
    """common.contract.dead_letter's JSON for a refusal made in the JVM, where there is no record
    to quote (key and payload are null): the fields of DEAD_LETTER_FIELDS, in that order."""
    fields = {
        "stage": F.lit(parsing.STAGE),
        "reason": F.lit(contract.clip(reason, contract.DEAD_LETTER_REASON_CHARS)),
        "origin": origin,
        "key": F.lit(None).cast("string"),
        "payload": F.lit(None).cast("string"),
        "refused_at": F.unix_millis(F.current_timestamp()),
    }
    record = F.struct(*[fields[name].alias(name) for name in contract.DEAD_LETTER_FIELDS])
    return F.to_json(record, {"ignoreNullFields": "false"})


def _window(start_ms: Column, size_ms: Column, watermark_ms: int) -> Column:
    """A window struct (start, end) that Spark's watermark treats as F.window's output."""
    return F.struct(
        F.timestamp_millis(start_ms).alias("start"),
        F.timestamp_millis(start_ms + size_ms).alias("end"),
    ).alias("window", metadata={_WATERMARK_DELAY_KEY: watermark_ms})


def _first_of_each_identity(
    ticks: DataFrame, windows_ms: Sequence[int], watermark_ms: int
) -> DataFrame:
    """The ticks with a redelivered one (same symbol, ts, seq) dropped: the first is kept.

    An identity is remembered until the last of its windows closes (the latest window end over
    the sizes), so a copy arriving any time a window could still count it is dropped; after
    that, the copy is late for every window anyway.
    """
    ts = F.col("ts")
    timed = ticks.withColumn("event_time", F.timestamp_millis(ts)).withWatermark(
        "event_time", f"{watermark_ms} milliseconds"
    )
    ends = [ts - ts % w + w for w in windows_ms]
    last_end = ends[0] if len(ends) == 1 else F.greatest(*ends)
    return timed.select(
        *TICK_COLUMNS, _window(last_end - max(windows_ms), F.lit(max(windows_ms)), watermark_ms)
    ).dropDuplicates(["symbol", "ts", "seq", "window"])


def aggregates(ticks: DataFrame, windows_ms: Sequence[int], watermark_ms: int) -> DataFrame:
    """One row per (symbol, window size, window) in the contract's Aggregate shape, every window
    size in one grouping, each tick identity counted once.

    Rows whose sums would not fit the contract's Aggregate (volume beyond a long, count beyond
    MAX_AGGREGATE_COUNT) keep `volume` null: the sink turns them into dead letters.
    """
    ts = F.col("ts")
    deduplicated = _first_of_each_identity(ticks, windows_ms, watermark_ms)
    # Every window size at once: one row per (tick, size), then one grouping.
    sizes = F.explode(F.array(*[F.lit(w).cast("long") for w in windows_ms])).alias("window_ms")
    exploded = deduplicated.select(*TICK_COLUMNS, sizes)
    size = F.col("window_ms")
    start = ts - ts % size
    keyed = exploded.select(
        *TICK_COLUMNS,
        "window_ms",
        _window(start, size, watermark_ms),
        ((ts - start) * F.lit(_SEQ_SPAN) + F.col("seq")).alias("order"),
    )
    # The first and last tick by (ts, seq): after the deduplication no two ticks of a symbol
    # share both, so the price needs no tie-break (common.reference's rule gives the same).
    grouped = keyed.groupBy("symbol", "window_ms", "window").agg(
        F.min_by("price", "order").alias("open"),
        F.max_by("price", "order").alias("close"),
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
        F.col("open"),
        F.col("high"),
        F.col("low"),
        F.col("close"),
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
    refused = _jvm_dead_letter(
        "the window's volume or count exceeds what an aggregate holds",
        F.struct(F.col("symbol"), F.col("window_ms"), F.col("window_start")),
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
    partitions: int,
) -> DataFrame:
    """topic, key, value for the Kafka sink: aggregates (update mode) and dead letters.

    One query, one offset range per batch, one scan and one verdict per record (see
    behind_one_exchange()),
    read by three branches: fast-path ticks, ticks only the contract's Python accepts, and
    dead letters.
    """
    checked = behind_one_exchange(with_jvm_verdict(records), partitions)
    aggs = aggregates(valid_ticks(checked), windows_ms, watermark_ms)
    letters = dead_letters(checked).select(
        F.lit(dead_letter_topic).alias("topic"), F.col("key"), F.col("value")
    )
    return aggregates_to_kafka(aggs, aggregates_topic, dead_letter_topic).unionByName(letters)
