"""Kill -9 the running job mid-stream, restart it on the same checkpoint: the final aggregates
of every window size still equal the reference (no window lost, none counted twice, ticks
redelivered after the restart not counted again)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from common.polling import wait_until
from common.reference import aggregate, differences
from tests.integration.processor.conftest import (
    keyed,
    output_aggregates,
    produce,
    start_job,
    tick,
)

REPO = Path(__file__).resolve().parents[3]
WINDOWS = (10_000, 60_000, 300_000)


def _start(settings, jars, log: Path, starting_offsets: str):
    return start_job(
        settings, jars, log,
        WINDOWS="10s,1m,5m", WATERMARK="30s",
        # Small batches, so the stream takes many of them and the kill lands mid-stream.
        MAX_OFFSETS_PER_TRIGGER="100", STARTING_OFFSETS=starting_offsets,
    )  # fmt: skip


def _wait_for(condition, timeout_s: float, proc: subprocess.Popen, log: Path) -> None:
    def running() -> None:
        if proc.poll() is not None:
            pytest.fail(f"processor exited with {proc.returncode}:\n{log.read_text()[-4000:]}")

    wait_until(condition, timeout_s, "the processor's output", check=running,
               describe=lambda: log.read_text()[-4000:])  # fmt: skip


def _random_ticks(rng: random.Random, symbols: list[str], start_ms: int) -> list:
    # seq = position, so (symbol, ts, seq) never repeats even when two ticks share a millisecond.
    return [
        tick(s, start_ms + rng.randrange(20_000), rng.randrange(100, 20_000) / 100,
             rng.randrange(500), seq=i)
        for i, s in enumerate(symbols)
    ]  # fmt: skip


@pytest.mark.slow
def test_kill_and_restart_from_checkpoint_gives_the_reference(
    processor_settings, spark_jars, tmp_path
):
    settings = processor_settings(windows_ms=WINDOWS)
    log = tmp_path / "processor.log"
    rng = random.Random(7)
    # Event times span 20 s, less than the 30 s watermark: wherever batches are cut, no tick is
    # late, so every tick must count. Shuffled, so they arrive out of order.
    before = _random_ticks(rng, ["AAPL", "MSFT", "IBM"] * 200, start_ms=0)
    # Produced while the job is down; a minute later, so earlier windows get closed for good.
    after = _random_ticks(rng, ["AAPL", "MSFT"] * 100, start_ms=60_000)
    bootstrap, topic = settings.bootstrap_servers, settings.aggregates_topic

    first = _start(settings, spark_jars, log, starting_offsets="earliest")
    try:
        produce(bootstrap, settings.ticks_topic, keyed(before))
        _wait_for(lambda: output_aggregates(bootstrap, topic)[0], 300, first, log)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    at_kill = output_aggregates(bootstrap, topic)[1]
    assert differences(aggregate(before, WINDOWS), at_kill), "the kill came after the stream"

    # A redelivery of ticks seen before the kill (same identities): the duplicate state in the
    # checkpoint must drop them, or they would count twice in the still-open 5m windows.
    produce(bootstrap, settings.ticks_topic, keyed(after + before[:50]))
    expected = aggregate(before + after, WINDOWS)
    # "latest" only applies without a checkpoint: had the restart not resumed from it, it would
    # skip every tick produced so far and never converge.
    second = _start(settings, spark_jars, log, starting_offsets="latest")
    try:
        _wait_for(lambda: not differences(expected, output_aggregates(bootstrap, topic)[1]),
                  300, second, log)  # fmt: skip
        second.send_signal(signal.SIGTERM)
        assert second.wait(90) == 0, log.read_text()[-4000:]
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    assert differences(expected, output_aggregates(bootstrap, topic)[1]) == []
    assert "stopped batches=" in log.read_text()
