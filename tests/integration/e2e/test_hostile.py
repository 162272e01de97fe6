"""Poison pills through the whole pipeline: a hostile corpus of over 10,000 records is written
straight into the ticks and aggregates topics while valid ticks flow.

Both long-running stages must stay up with no query restart; each hostile record is
dead-lettered once by every stage that reads it (the processor and storage read ticks; storage
reads aggregates), with its reason and origin; every valid tick is stored once and counted in
its aggregates exactly as the reference computes them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pytest

from common.contract import DEAD_LETTER_MAX_BYTES, dead_letter_bytes, now_ms, read_dead_letter
from tests.hostile import corpus, large_records, overflow_in_sum_ticks
from tests.integration.e2e.pipeline import Run, symbols
from tests.integration.storage.conftest import read_to_end, send_all


@pytest.mark.slow
def test_hostile_records_in_both_topics_stop_no_stage_and_lose_no_valid_tick(pipeline):
    run = Run(symbols=symbols(20), seed=14, count=None, rate=100)
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
    pipeline.stop_producer(more_ticks=200)
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


@pytest.mark.slow
def test_records_up_to_the_brokers_limit_stop_no_stage_and_lose_no_valid_tick(pipeline):
    """Issue #18's attack on a running pipeline: records from 4 KB to just under the broker's
    limit, of every kind of content, with keys of up to 100 KB, written uncompressed and in
    gzip, lz4 and zstd batches while valid ticks flow. No stage stops or restarts a query or
    retries a batch; each is dead-lettered once by each stage that reads it, bounded, with its
    length and digest; the valid ticks are stored and aggregated exactly."""
    run = Run(symbols=symbols(10), seed=18, count=None, rate=100)
    pipeline.start_all(run)
    bootstrap, topic = pipeline.env["KAFKA_BOOTSTRAP_SERVERS"], pipeline.topics["ticks"]
    pipeline.wait_until(lambda: pipeline.stored_tick_count() >= 100, 120, "valid ticks flowing")
    large = large_records()
    sent = {}
    for compression in (None, "gzip", "lz4", "zstd"):
        # Uncompressed, all of them; compressed, the sizes a batch of several can hold.
        chosen = large if compression is None else [h for h in large if "-64k" in h.kind]
        records = [(topic, h.key, h.value) for h in chosen]
        where = send_all(bootstrap, records, compression_type=compression,
                         max_request_size=2 * 1024 * 1024)  # fmt: skip
        sent.update(zip(where, chosen, strict=True))
    assert pipeline.alive("producer"), "the valid stream ended before the large records"

    expected_letters = 2 * len(sent)
    pipeline.wait_until(
        lambda: pipeline.dead_letter_count() >= expected_letters, 300, "every dead letter"
    )
    pipeline.stop_producer(more_ticks=200)
    pipeline.assert_exact(timeout_s=300, dead_letters=expected_letters)

    records = read_to_end(bootstrap, pipeline.topics["dead_letters"])
    stages_by_origin = defaultdict(list)
    for record in records:
        assert len(record.value) <= DEAD_LETTER_MAX_BYTES
        letter = read_dead_letter(record.value)
        o = letter["origin"]
        where = (o["topic"], o["partition"], o["offset"])
        stages_by_origin[where].append(letter["stage"])
        hostile = sent[where]
        assert letter["payload"]["sha256"] == hashlib.sha256(hostile.value).hexdigest()
        assert letter["payload"]["bytes"] == len(hostile.value)
        assert hostile.value.startswith(dead_letter_bytes(letter["payload"]))
        assert letter["key"]["sha256"] == hashlib.sha256(hostile.key).hexdigest()
    assert {k: sorted(v) for k, v in stages_by_origin.items()} == {
        where: ["processor", "storage"] for where in sent
    }
    for stage in ("storage", "processor"):
        assert pipeline.alive(stage), f"{stage} stopped:\n{pipeline.tail(stage)}"
    assert "restarting it from its checkpoint" not in pipeline.stages.log_text("processor")
    assert "batch not stored, retrying" not in pipeline.stages.log_text("storage")
