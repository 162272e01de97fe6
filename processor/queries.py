"""The processor's one streaming query: ticks in; aggregates and dead letters out, one sink.

One read of the ticks topic per micro-batch feeds both outputs (see processor.aggregation); the
checkpoint under the checkpoint directory holds the offsets and the window and duplicate state a
restart resumes from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from processor import aggregation
from processor.settings import ProcessorSettings

logger = logging.getLogger(__name__)

QUERY = "processor"
# What the checkpoint's state depends on: restarting with other values would misread the state.
_LAYOUT_FILE = "processor-layout.json"
# The shape of the plan (operators and their state). Bump it when the state's layout changes:
# a checkpoint of another plan is refused instead of being misread.
# 1: two queries (aggregates, dead-letters), a union of one aggregation per window size.
# 2: one query, deduplication by identity, one aggregation over every window size.
# 3: as 2, open/close by min_by/max_by of a packed (ts, seq) (the aggregation's state changed).
PLAN_VERSION = 3


class CheckpointMismatch(RuntimeError):
    """The checkpoint was written with settings that its state cannot be read with."""


@dataclass(frozen=True)
class Trigger:
    """processing_time_ms > 0: run forever; None: process what is there now, then stop."""

    processing_time_ms: int | None

    def options(self) -> dict[str, object]:
        if self.processing_time_ms is None:
            return {"availableNow": True}
        return {"processingTime": f"{self.processing_time_ms} milliseconds"}


def _records(spark, settings: ProcessorSettings, trigger: Trigger):
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", settings.ticks_topic)
        .option("startingOffsets", settings.starting_offsets)
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
    least = settings.records_a_batch_waits_for()
    if least and trigger.processing_time_ms is not None:
        # A batch has a fixed cost (planning, code generated for the batch's watermark, four
        # state stores to commit): at a few ticks a second one batch every trigger interval
        # kept most of a core busy. Waiting for enough records, or at most the delay, bounds
        # both the batches per second and a window's extra latency.
        reader = reader.option("minOffsetsPerTrigger", str(least)).option(
            "maxTriggerDelay", f"{settings.max_trigger_delay_ms}ms"
        )
    return reader.load()


def layout(settings: ProcessorSettings) -> dict[str, object]:
    return {
        "plan": PLAN_VERSION,
        "ticks_topic": settings.ticks_topic,
        "windows_ms": list(settings.windows_ms),
        "watermark_ms": settings.watermark_ms,
    }


def check_layout(settings: ProcessorSettings) -> None:
    """Refuse to resume a checkpoint made by another plan or with other windows or topics."""
    wanted = layout(settings)
    path = settings.checkpoint_dir / _LAYOUT_FILE
    restart = (
        "give a new --checkpoint-dir (CHECKPOINT_DIR), or delete the old one to start over "
        "from --starting-offsets"
    )
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("plan", 1) != PLAN_VERSION:
            raise CheckpointMismatch(
                f"the checkpoint in {settings.checkpoint_dir} was written by an older processor "
                f"(plan {saved.get('plan', 1)}, this one runs plan {PLAN_VERSION}) whose state "
                f"this one cannot read: {restart}"
            )
        if saved != wanted:
            raise CheckpointMismatch(
                f"the checkpoint in {settings.checkpoint_dir} was made with {saved}, not "
                f"{wanted}: {restart}"
            )
        return
    settings.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted) + "\n")


def start(spark, settings: ProcessorSettings, trigger: Trigger):
    """Start the query; returns its StreamingQuery."""
    check_layout(settings)
    frame = aggregation.plan(
        _records(spark, settings, trigger),
        settings.windows_ms,
        settings.watermark_ms,
        settings.aggregates_topic,
        settings.dead_letter_topic,
        settings.shuffle_partitions,
    )
    query = (
        # Each row names its topic (aggregates or dead letters); update mode re-emits a window
        # each time it changes, under the same identity.
        frame.writeStream.queryName(QUERY)
        .format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .outputMode("update")
        .option("checkpointLocation", str(settings.checkpoint(QUERY)))
        .trigger(**trigger.options())
        .start()
    )
    logger.info("started queries %s", settings.describe())
    return query
