"""The two streaming queries: ticks -> aggregates, and refused records -> dead letters.

Each query has its own checkpoint under the checkpoint directory, so a restart resumes both from
the offsets and window state they last committed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from processor import aggregation
from processor.settings import ProcessorSettings

logger = logging.getLogger(__name__)

AGGREGATES_QUERY = "aggregates"
DEAD_LETTERS_QUERY = "dead-letters"
QUERIES = (AGGREGATES_QUERY, DEAD_LETTERS_QUERY)
# What the checkpoint's state depends on: restarting with other values would misread the state.
_LAYOUT_FILE = "processor-layout.json"


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


def _records(spark, settings: ProcessorSettings):
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", settings.ticks_topic)
        .option("startingOffsets", settings.starting_offsets)
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
    return reader.load()


def check_layout(settings: ProcessorSettings) -> None:
    """Refuse to resume a checkpoint whose window sizes or topics differ from the settings."""
    layout = {
        "ticks_topic": settings.ticks_topic,
        "windows_ms": list(settings.windows_ms),
        "watermark_ms": settings.watermark_ms,
    }
    path = settings.checkpoint_dir / _LAYOUT_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != layout:
            raise CheckpointMismatch(
                f"the checkpoint in {settings.checkpoint_dir} was made with {saved}, not "
                f"{layout}: give a new --checkpoint-dir (CHECKPOINT_DIR), or delete the old one "
                "to start over from --starting-offsets"
            )
        return
    settings.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(layout) + "\n")


def start(spark, settings: ProcessorSettings, trigger: Trigger) -> list:
    """Start both queries; returns the StreamingQuery handles (aggregates first)."""
    check_layout(settings)
    running = [start_query(spark, settings, name, trigger) for name in QUERIES]
    logger.info("started queries %s", settings.describe())
    return running


def start_query(spark, settings: ProcessorSettings, name: str, trigger: Trigger):
    records = _records(spark, settings)
    if name == AGGREGATES_QUERY:
        aggs = aggregation.aggregates(
            aggregation.valid_ticks(records), settings.windows_ms, settings.watermark_ms
        )
        # Update mode re-emits a window each time it changes, under the same identity.
        frame, topic, mode = aggregation.to_kafka(aggs), settings.aggregates_topic, "update"
    elif name == DEAD_LETTERS_QUERY:
        frame, topic, mode = aggregation.dead_letters(records), settings.dead_letter_topic, "append"
    else:
        raise ValueError(f"no query named {name!r}; there are {QUERIES}")
    return (
        frame.writeStream.queryName(name)
        .format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("topic", topic)
        .outputMode(mode)
        .option("checkpointLocation", str(settings.checkpoint(name)))
        .trigger(**trigger.options())
        .start()
    )
