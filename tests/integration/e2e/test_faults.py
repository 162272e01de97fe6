"""Faults mid-stream, each ending in the same exact check as the fault-free run: every tick
stored once, aggregates equal to the reference, latest_prices the newest tick per symbol.

Ticks flow at a steady 100/s until the test stops the producer, after its fault has happened and
more ticks have flowed through what the fault left: the stream never ends before the fault,
however slowly a cold machine starts the stages. These tests stop and kill services, so they need
a stack the harness controls.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for_session
from tests.integration.e2e.pipeline import (
    Pipeline,
    Run,
    needs_own_stack,
    symbols,
)

OUTAGE_S = 10.0


# Ticks that flow after each fault before the producer is stopped.
AFTER_FAULT = 300


def _run(seed: int) -> Run:
    return Run(symbols=symbols(50), seed=seed, count=None, rate=100)


def _mid_stream(pipeline: Pipeline, stored_at_least: int = 300) -> None:
    """Wait until ticks are being stored, and check the stream is still flowing."""
    pipeline.wait_until(lambda: pipeline.stored_tick_count() >= stored_at_least, 90,
                        f"{stored_at_least} ticks to be stored")  # fmt: skip
    assert pipeline.alive("producer"), "the stream ended before the fault"


def _hold_outage(pipeline: Pipeline, stages: tuple[str, ...]) -> None:
    """The outage itself: ~10 s during which the named stages must keep running."""
    deadline = time.monotonic() + OUTAGE_S
    while time.monotonic() < deadline:
        for stage in stages:
            assert pipeline.alive(stage), f"{stage} died during the outage:\n{pipeline.tail(stage)}"
        time.sleep(0.5)


@pytest.mark.slow
def test_storage_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(pipeline):
    run = _run(seed=21)
    pipeline.start_all(run)
    _mid_stream(pipeline)
    pipeline.kill("storage")
    stored_at_kill = pipeline.stored_tick_count()
    # Let ticks pile up in Kafka while no writer runs: the restart must pick them up.
    pipeline.wait_until(lambda: stored_at_kill + 500 <= pipeline.produced(), 60,
                        "ticks to pile up while storage is down")  # fmt: skip
    assert pipeline.stored_tick_count() == stored_at_kill, "a killed writer kept writing"
    pipeline.start("storage")
    pipeline.stop_producer(more_ticks=AFTER_FAULT)
    pipeline.assert_exact()


@pytest.mark.slow
def test_processor_killed_mid_stream_resumes_from_its_checkpoint_exactly(pipeline):
    run = _run(seed=22)
    pipeline.start_all(run)
    pipeline.wait_until(lambda: pipeline.stored_aggregates(), 90, "the first aggregates")
    assert pipeline.alive("producer"), "the stream ended before the fault"
    pipeline.kill("processor")
    pipeline.start(
        "processor",
        {"WINDOWS": ",".join(f"{w}ms" for w in run.windows_ms), "WATERMARK": run.watermark,
         # Only a checkpoint can make it see the earlier ticks: without one it would skip them.
         "STARTING_OFFSETS": "latest"},
    )  # fmt: skip
    pipeline.stop_producer(more_ticks=AFTER_FAULT)
    pipeline.assert_exact()


@pytest.mark.slow
def test_kafka_stopped_for_10s_while_the_producer_runs_loses_nothing(pipeline, services):
    stack = needs_own_stack(services)
    run = _run(seed=23)
    pipeline.start_all(run)
    _mid_stream(pipeline)
    stack.stop("kafka")
    try:
        _hold_outage(pipeline, ("producer", "processor", "storage"))
    finally:
        stack.start("kafka")
    pipeline.stop_producer(more_ticks=AFTER_FAULT, timeout_s=180)
    pipeline.assert_exact(timeout_s=180)


@pytest.mark.slow
def test_cassandra_stopped_for_10s_while_the_writer_runs_loses_nothing(
    pipeline, services, cassandra_session
):
    stack = needs_own_stack(services)
    run = _run(seed=24)
    pipeline.start_all(run)
    _mid_stream(pipeline)
    stack.stop("cassandra")
    try:
        _hold_outage(pipeline, ("producer", "processor", "storage"))
    finally:
        stack.start("cassandra")
        # "Ready" is the node answering; clients reconnect on their own schedule. The shared
        # session is what the keyspace teardown and the tests after this one use.
        wait_for_session(pipeline.session)
        wait_for_session(cassandra_session)
    assert "batch not stored, retrying" in pipeline.stages.log_text("storage"), "no outage was felt"
    pipeline.stop_producer(more_ticks=AFTER_FAULT, timeout_s=180)
    pipeline.assert_exact(timeout_s=180)
