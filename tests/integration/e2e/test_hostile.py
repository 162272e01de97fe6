"""Poison pills through the whole pipeline: a hostile corpus of over 10,000 records is written
straight into the ticks and aggregates topics while valid ticks flow.

Both long-running stages must stay up with no query restart; each hostile record is
dead-lettered once by every stage that reads it (the processor and storage read ticks; storage
reads aggregates), with its reason and origin; every valid tick is stored once and counted in
its aggregates exactly as the reference computes them.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from common.contract import now_ms
from tests.hostile import corpus, overflow_in_sum_ticks
from tests.integration.e2e.conftest import Run, symbols
from tests.integration.storage.conftest import send_all


@pytest.mark.slow
def test_hostile_records_in_both_topics_stop_no_stage_and_lose_no_valid_tick(pipeline):
    run = Run(symbols=symbols(20), seed=14, count=2000, rate=100)
    pipeline.start_all(run)
    ticks_topic, aggregates_topic = pipeline.topics["ticks"], pipeline.topics["aggregates"]
    now = now_ms()
    hostile_ticks = corpus(8000, "ticks", now, seed=3)
    hostile_ticks += overflow_in_sum_ticks(run.symbols[0], run.start_ms + 1000, 200)
    hostile_aggregates = corpus(2500, "aggregates", now, seed=4)
    records = [(ticks_topic, h.key, h.value) for h in hostile_ticks]
    records += [(aggregates_topic, h.key, h.value) for h in hostile_aggregates]
    assert len(records) >= 10_000
    # Written while the producer's valid ticks flow into the same topic.
    pipeline.wait_until(lambda: pipeline.stored_tick_count() >= 100, 120, "valid ticks flowing")
    origins = send_all(pipeline.env["KAFKA_BOOTSTRAP_SERVERS"], records)
    assert pipeline.alive("producer"), "the valid stream ended before the hostile records"

    expected_letters = 2 * len(hostile_ticks) + len(hostile_aggregates)
    pipeline.wait_until(
        lambda: pipeline.dead_letter_count() >= expected_letters, 300, "every dead letter"
    )
    pipeline.assert_exact(timeout_s=300, dead_letters=expected_letters)

    stages_by_origin = defaultdict(list)
    for letter in pipeline.dead_letters():
        assert letter["reason"], letter
        o = letter["origin"]
        stages_by_origin[(o["topic"], o["partition"], o["offset"])].append(letter["stage"])
    want = {}
    for topic, partition, offset in origins:
        readers = ["processor", "storage"] if topic == ticks_topic else ["storage"]
        want[(topic, partition, offset)] = readers
    assert {k: sorted(v) for k, v in stages_by_origin.items()} == want

    for stage in ("storage", "processor"):
        assert pipeline.alive(stage), f"{stage} stopped:\n{pipeline.tail(stage)}"
    processor_log = pipeline.stages.log_text("processor")
    assert "restarting it from its checkpoint" not in processor_log, "a query was restarted"
