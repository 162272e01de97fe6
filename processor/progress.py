"""Reading the queries' progress reports: log each micro-batch, and keep running totals.

Spark keeps the last reports of each query (spark.sql.streaming.numRecentProgressUpdates,
100 by default); polling them every second or so misses none. Only reports of batches that ran
count: the "idle" reports Spark adds while no data arrives carry no batch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Totals:
    batches: int = 0
    input_rows: int = 0
    # Rows a stateful operator dropped as later than the watermark, summed over window sizes.
    late_dropped: int = 0
    dead_letters: int = 0
    batch_ms: list[int] = field(default_factory=list)


# Where a batch's time went, in Spark's own names; triggerExecution is their whole.
_PHASES = ("latestOffset", "getBatch", "queryPlanning", "walCommit", "addBatch", "commitOffsets")


def _phases(durations: dict[str, int]) -> str:
    return " ".join(f"{name}={int(durations[name])}" for name in _PHASES if name in durations)


def _executed(report: dict[str, Any]) -> bool:
    return "addBatch" in report.get("durationMs", {})


class ProgressTracker:
    def __init__(self) -> None:
        self.totals: dict[str, Totals] = {}
        self._seen: dict[str, set[int]] = {}

    def poll(self, queries: list) -> list[dict[str, Any]]:
        """Log and count the reports of batches not seen yet; returns them."""
        fresh = []
        for query in queries:
            for progress in query.recentProgress:
                report = _as_dict(progress)
                name = report.get("name") or str(report.get("id"))
                seen = self._seen.setdefault(name, set())
                if not _executed(report) or report["batchId"] in seen:
                    continue
                seen.add(report["batchId"])
                self._count(name, report)
                fresh.append(report)
        return fresh

    def _count(self, name: str, report: dict[str, Any]) -> None:
        totals = self.totals.setdefault(name, Totals())
        operators = report.get("stateOperators", [])
        late = sum(op.get("numRowsDroppedByWatermark", 0) for op in operators)
        dead = int(report.get("observedMetrics", {}).get("dead_letters", {}).get("count", 0))
        duration = int(report["durationMs"].get("triggerExecution", 0))
        totals.batches += 1
        totals.input_rows += int(report.get("numInputRows", 0))
        totals.late_dropped += late
        totals.dead_letters += dead
        totals.batch_ms.append(duration)
        logger.info(
            "query=%s batch=%s input_rows=%d input_rows_per_s=%.1f processed_rows_per_s=%.1f "
            "batch_ms=%d (%s) watermark=%s late_dropped=%d dead_letters=%d "
            "total_late_dropped=%d total_dead_letters=%d",
            name,
            report["batchId"],
            report.get("numInputRows", 0),
            report.get("inputRowsPerSecond") or 0.0,
            report.get("processedRowsPerSecond") or 0.0,
            duration,
            _phases(report["durationMs"]),
            report.get("eventTime", {}).get("watermark", "-"),
            late,
            dead,
            totals.late_dropped,
            totals.dead_letters,
        )


def _as_dict(progress: Any) -> dict[str, Any]:
    # pyspark 4 gives StreamingQueryProgress objects (dicts holding Rows); their JSON is the
    # stable, documented form.
    text = getattr(progress, "json", None)
    return json.loads(text) if isinstance(text, str) else dict(progress)
