"""The whole pipeline, no faults: seeded simulated ticks for 50 symbols through producer, Kafka,
processor and storage into Cassandra, compared exactly with what was produced."""

from __future__ import annotations

import pytest

from tests.integration.e2e.pipeline import Run, symbols


@pytest.mark.slow
def test_every_tick_stored_once_and_aggregates_equal_the_reference(pipeline):
    # 3000 ticks at 150/s: 20 s of event time, two or three 10 s windows per symbol.
    run = Run(symbols=symbols(50), seed=11, count=3000, rate=150)
    pipeline.start_all(run)
    pipeline.assert_exact()
    # Both readers are still up after draining, and stop cleanly on SIGTERM.
    assert pipeline.alive("storage") and pipeline.alive("processor")
    codes = pipeline.stop_all()
    assert codes == {"storage": 0, "processor": 0, "producer": 0}, (
        f"exit codes {codes}; processor log ends:\n{pipeline.tail('processor')}"
    )
