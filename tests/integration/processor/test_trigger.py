"""The trigger follows the input: at a trickle, a micro-batch waits for enough records or for
the longest delay (a batch's fixed cost is what the processor spends at rest), and every tick is
still counted."""

from __future__ import annotations

import time

from common.contract import now_ms
from common.polling import wait_until
from processor import queries
from processor.progress import ProgressTracker
from tests.integration.processor.conftest import keyed, output_aggregates, produce

WINDOWS = (60_000,)


def test_a_trickle_is_gathered_into_few_batches_and_every_tick_counts(spark, processor_settings):
    from common.contract import Tick

    settings = processor_settings(
        windows_ms=WINDOWS,
        trigger_interval_ms=100,
        min_offsets_per_trigger=10_000,
        max_trigger_delay_ms=2_000,
        starting_offsets="latest",
    )
    query = queries.start(spark, settings, queries.Trigger(settings.trigger_interval_ms))
    tracker = ProgressTracker()
    reports: list[dict] = []
    try:
        wait_until(lambda: query.lastProgress is not None, 300, "the query's first batch")
        # 40 ticks over about 4 s: with a 100 ms trigger and no minimum, 20 batches or more.
        start = now_ms()
        sent = 40
        for i in range(sent):
            produce(settings.bootstrap_servers, settings.ticks_topic,
                    keyed([Tick("TRKL", 100.0 + i, 1, start + i * 100, "test")]))  # fmt: skip
            time.sleep(0.1)  # the trickle's own pace, not a wait for anything

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
        query.stop()
    # The ticks spread over 4 s and a batch waits up to 2 s for more: a handful of batches.
    with_data = [r["numInputRows"] for r in reports if r.get("numInputRows")]
    assert sum(with_data) == sent
    assert 1 <= len(with_data) <= 4, with_data
