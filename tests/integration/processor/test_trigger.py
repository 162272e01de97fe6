"""The trigger follows the input: at a trickle, a micro-batch waits for enough records or for
the longest delay (a batch's fixed cost is what the processor spends at rest), and every tick is
still counted."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from itertools import pairwise

from common.contract import Tick, now_ms
from common.polling import wait_until
from processor import queries
from processor.progress import ProgressTracker
from tests.integration.processor.conftest import output_aggregates

WINDOWS = (60_000,)
DELAY_MS = 2_000


def _started_s(report: dict) -> float:
    return datetime.fromisoformat(report["timestamp"].replace("Z", "+00:00")).timestamp()


def test_a_trickle_is_gathered_into_batches_a_delay_apart(spark, processor_settings, caplog):
    from kafka import KafkaProducer

    caplog.set_level(logging.INFO, logger="processor.progress")

    settings = processor_settings(
        windows_ms=WINDOWS,
        trigger_interval_ms=100,
        min_offsets_per_trigger=10_000,
        max_trigger_delay_ms=DELAY_MS,
        starting_offsets="latest",
    )
    query = queries.start(spark, settings, queries.Trigger(settings.trigger_interval_ms))
    tracker = ProgressTracker()
    reports: list[dict] = []
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        wait_until(lambda: query.lastProgress is not None, 300, "the query's first trigger")
        # A tick every 100 ms for about 4 s: with a 100 ms trigger and no minimum, a batch
        # each trigger.
        start, sent = now_ms(), 40
        began = time.monotonic()
        for i in range(sent):
            tick = Tick("TRKL", 100.0 + i, 1, start + i * 100, "test")
            producer.send(settings.ticks_topic, key=tick.key, value=tick.to_json()).get(30)
            time.sleep(0.1)  # the trickle's own pace, not a wait for anything
        trickle_s = time.monotonic() - began

        def counted() -> int:
            reports.extend(tracker.poll([query]))
            final = output_aggregates(settings.bootstrap_servers, settings.aggregates_topic)[1]
            return sum(a.count for a in final.values())

        def running() -> None:
            assert query.isActive, f"the query stopped: {query.exception()}"

        wait_until(lambda: counted() == sent, 120, f"{sent} ticks counted", every_s=0.5,
                   check=running)  # fmt: skip
        reports.extend(tracker.poll([query]))
    finally:
        producer.close()
        query.stop()
    with_data = sorted((r for r in reports if r.get("numInputRows")), key=_started_s)
    assert with_data, "no batch with data reported"
    # The minimum (10,000 records) is never reached: each batch with data started only once
    # the delay had passed since the one before.
    gaps = [_started_s(b) - _started_s(a) for a, b in pairwise(with_data)]
    assert all(gap >= DELAY_MS / 1000 * 0.9 for gap in gaps), gaps
    # So a handful of batches, where a batch each trigger would have made one per tick.
    assert len(with_data) <= trickle_s / (DELAY_MS / 1000) + 2, [
        r["numInputRows"] for r in with_data
    ]
    # Polled every half second, the tracker read every batch that ran, once.
    ids = [r["batchId"] for r in reports if "addBatch" in r["durationMs"]]
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids
    # Each batch's log line says where its time went, in Spark's names for the phases.
    lines = [r.getMessage() for r in caplog.records if r.name == "processor.progress"]
    assert len(lines) >= len(with_data), lines
    for line in lines:
        found = re.search(r"batch_ms=(\d+) \(.*\bqueryPlanning=\d+ .*\baddBatch=(\d+)", line)
        assert found and int(found.group(2)) <= int(found.group(1)), line
        # ... and what its two stateful operators held: after a batch with ticks, the
        # deduplication one key per tick and the aggregation one row per window.
        held = re.search(r"state=\(stateStoreSave rows=(\d+) .*; dedupe rows=(\d+) ", line)
        assert held, line
        if int(re.search(r" input_rows=(\d+) ", line).group(1)) > 0:
            assert int(held.group(2)) >= int(held.group(1)) > 0, line
