"""A polled source's last quote is sent again when the producer restarts (its memory of what it
sent dies with it): the redelivered tick has the same identity (symbol, ts, seq) and must not
count twice. The real producer (a subprocess, polling a local HTTP server that stands in for
Yahoo) is stopped mid-stream and started again while the processor's query runs; its aggregates
must equal the reference over the distinct ticks in the topic, count and volume included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.contract import Tick, now_ms
from common.polling import wait_until
from common.reference import aggregate, differences
from processor import queries
from tests.integration.processor.conftest import output_aggregates, read_all
from tests.unit.producer.servers import Answer, yahoo_chart

REPO = Path(__file__).resolve().parents[3]
WINDOWS = (10_000, 60_000, 300_000)
SYMBOLS = ("AAPL", "MSFT")


def _quotes(server, first_s: int, rounds: range) -> None:
    """Each poll of a symbol answers the next quote, 10 s apart; the last one repeats."""
    for i, symbol in enumerate(SYMBOLS):
        answers = [
            Answer(body=yahoo_chart(symbol, 100.0 + 10 * i + r, first_s + 10 * r, (1000 + r, None)))
            for r in rounds
        ]
        server.script(f"/v8/finance/chart/{symbol}", *answers)


def _producer(settings, server_url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TICKS_TOPIC": settings.ticks_topic,
        "DEAD_LETTER_TOPIC": settings.dead_letter_topic,
    }
    argv = ["--source", "yahoo", "--symbols", ",".join(SYMBOLS), "--interval", "1",
            "--yahoo-base-url", server_url]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "producer", *argv],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _ticks(settings) -> list[Tick]:
    return [Tick.from_json(r.value) for r in read_all(settings.bootstrap_servers,
                                                      settings.ticks_topic)]  # fmt: skip


def _wait(condition, timeout_s: float, what: str, log: Path | None = None) -> None:
    def tail() -> str:
        return log.read_text()[-3000:] if log and log.exists() else ""

    wait_until(condition, timeout_s, what, every_s=0.5, describe=tail)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_quote_resent_after_a_producer_restart_counts_once(
    spark, processor_settings, source_server, tmp_path
):
    settings = processor_settings(windows_ms=WINDOWS)
    log = tmp_path / "producer.log"
    first_s = now_ms() // 1000 - 600
    query = queries.start(spark, settings, queries.Trigger(300))
    try:
        _quotes(source_server, first_s, range(0, 3))
        producer = _producer(settings, source_server.url, log)
        try:
            _wait(lambda: len(_ticks(settings)) >= 3 * len(SYMBOLS), 120, "3 quotes each", log)
            # A round more, answered with the same last quote: not resent by this process.
            polled = len(source_server.requests)
            _wait(lambda: len(source_server.requests) >= polled + len(SYMBOLS), 60, "a round")
        finally:
            _stop(producer)
        assert len(_ticks(settings)) == 3 * len(SYMBOLS)

        # The restarted producer first sees the quote its predecessor sent last, then new ones.
        _quotes(source_server, first_s, range(2, 5))
        producer = _producer(settings, source_server.url, log)
        try:
            _wait(lambda: len(_ticks(settings)) >= 6 * len(SYMBOLS), 120, "the rest", log)
        finally:
            _stop(producer)

        ticks = _ticks(settings)
        distinct = list({t.identity: t for t in ticks}.values())
        assert len(ticks) - len(distinct) == len(SYMBOLS), "each last quote was sent again"
        expected = aggregate(distinct, WINDOWS)
        _wait(
            lambda: (
                not differences(
                    expected,
                    output_aggregates(settings.bootstrap_servers, settings.aggregates_topic)[1],
                )
            ),
            180,
            "aggregates of the distinct ticks",
        )
        assert query.isActive and query.exception() is None
    finally:
        query.stop()
    final = output_aggregates(settings.bootstrap_servers, settings.aggregates_topic)[1]
    assert differences(expected, final) == []
    # Counted twice, the resent quotes would show here (count and volume of their windows).
    for symbol in SYMBOLS:
        five_minutes = [a for k, a in final.items() if k[0] == symbol and k[1] == 300_000]
        assert sum(a.count for a in five_minutes) == 5
        assert sum(a.volume for a in five_minutes) == sum(t.volume for t in distinct
                                                          if t.symbol == symbol)  # fmt: skip
