"""Hostile answers from the polled sources, through the real producer into the real Kafka.

Valid quotes reach the ticks topic; everything the contract refuses reaches the dead-letter topic
naming the source and the symbol; a trickling answer is abandoned without starving the rest; and
SIGINT or SIGTERM in the middle of such an answer stops `python -m producer` within seconds,
flushing what it had fetched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from common.contract import Tick, dead_letter_bytes, read_dead_letter
from producer.publisher import Publisher
from producer.runner import runner_for
from producer.settings import parse_settings
from producer.sources import build_source
from producer.stats import ProducerCounters
from tests.integration.producer.conftest import read_topic, wait_for
from tests.unit.producer.servers import Answer, stooq_csv, yahoo_chart

ROOT = Path(__file__).resolve().parents[3]
NOW_S = int(time.time()) - 60


def start_runner(argv: list[str], bootstrap: str, source: str):
    settings = parse_settings(argv, {"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    stop, counters = threading.Event(), ProducerCounters()
    runner = runner_for(
        settings,
        build_source(settings, stop),
        Publisher(settings, counters, source),
        counters,
        stop,
    )
    thread = threading.Thread(target=runner.run)
    thread.start()
    return stop, counters, thread


def test_yahoo_hostile_answers_are_dead_lettered_and_the_good_ones_published(
    services, make_topic, source_server
):
    topic, dead = make_topic(partitions=3), make_topic(suffix="_dl")
    chart = "/v8/finance/chart/"
    source_server.script(chart + "AAPL", Answer(body=yahoo_chart("AAPL", 230.49, NOW_S)))
    source_server.script(
        chart + "BIG", Answer(body=yahoo_chart("BIG", 10.5, NOW_S, volumes=(10**20,)))
    )
    source_server.script(chart + "NAN", Answer(body=yahoo_chart("NAN", float("nan"), NOW_S)))
    source_server.script(chart + "JUNK", Answer(body=b"\x89PNG\r\n\x1a\n\x00garbage"))
    source_server.script(chart + "DEEP", Answer(body=b"[" * 100_000))
    source_server.script(chart + "SLOW", Answer(endless=True, trickle_s=0.05))
    source_server.script(chart + "LAST", Answer(body=yahoo_chart("LAST", 1.25, NOW_S)))
    symbols = "AAPL,BIG,NAN,JUNK,DEEP,SLOW,LAST"
    stop, counters, thread = start_runner(
        ["--source", "yahoo", "--symbols", symbols, "--interval", "1h",
         "--yahoo-base-url", source_server.url, "--ticks-topic", topic,
         "--dead-letter-topic", dead, "--http-timeout", "1s", "--http-retries", "0"],
        services.bootstrap_servers, "yahoo",
    )  # fmt: skip
    try:
        wait_for(lambda: counters.published + counters.rejected >= 6, 60, "the first round")
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert (counters.published, counters.rejected, counters.failed) == (2, 4, 1)

    ticks = [
        Tick.from_record(r.key, r.value) for r in read_topic(services.bootstrap_servers, topic, 2)
    ]
    assert sorted((t.symbol, t.price) for t in ticks) == [("AAPL", 230.49), ("LAST", 1.25)]
    records = read_topic(services.bootstrap_servers, dead, 4)
    letters = {
        read_dead_letter(r.value)["origin"]["symbol"]: (r.key, read_dead_letter(r.value))
        for r in records
    }
    assert sorted(letters) == ["BIG", "DEEP", "JUNK", "NAN"]
    for symbol, (key, letter) in letters.items():
        assert key == symbol.encode()
        assert letter["stage"] == "producer"
        assert letter["origin"] == {"source": "yahoo", "symbol": symbol}
    assert "volume" in letters["BIG"][1][
        "reason"
    ] and b"100000000000000000000" in dead_letter_bytes(letters["BIG"][1]["payload"])
    assert "price" in letters["NAN"][1]["reason"]
    assert "nested too deeply" in letters["DEEP"][1]["reason"]
    slow = source_server.requests_to(chart + "SLOW")
    assert len(slow) == 1 and slow[0].client_left.is_set()


def test_stooq_infinite_volume_is_dead_lettered_and_the_round_goes_on(
    services, make_topic, source_server
):
    topic, dead = make_topic(), make_topic(suffix="_dl")
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW_S))
    source_server.script(
        "/q/l/",
        Answer(
            body=stooq_csv(
                f"AAPL.US,{day},10:00:00,1,1,1,230.49,1e999",
                f"MSFT.US,{day},10:00:00,1,1,1,415.5,12",
            )
        ),
    )
    stop, counters, thread = start_runner(
        ["--source", "stooq", "--symbols", "AAPL,MSFT", "--interval", "1h",
         "--stooq-base-url", source_server.url, "--ticks-topic", topic,
         "--dead-letter-topic", dead],
        services.bootstrap_servers, "stooq",
    )  # fmt: skip
    try:
        wait_for(lambda: counters.published + counters.rejected >= 2, 60, "the first round")
    finally:
        stop.set()
        thread.join(60)
    assert (counters.published, counters.rejected) == (1, 1)
    [tick] = [Tick.from_json(r.value) for r in read_topic(services.bootstrap_servers, topic, 1)]
    assert (tick.symbol, tick.volume, tick.source) == ("MSFT", 12, "stooq")
    [letter] = [read_dead_letter(r.value) for r in read_topic(services.bootstrap_servers, dead, 1)]
    assert letter["stage"] == "producer"
    assert letter["origin"] == {"source": "stooq", "symbol": "AAPL"}
    assert "volume must be a whole number" in letter["reason"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_trickling_answer_stops_the_producer_and_flushes(
    services, make_topic, source_server, signum
):
    topic, dead = make_topic(), make_topic(suffix="_dl")
    chart = "/v8/finance/chart/"
    source_server.script(chart + "AAPL", Answer(body=yahoo_chart("AAPL", 230.49, NOW_S)))
    source_server.script(chart + "SLOW", Answer(endless=True, trickle_s=0.2))
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=services.bootstrap_servers, LOG_LEVEL="INFO")
    # A deadline of half an hour: only the signal can end SLOW's answer. A linger of a minute
    # keeps AAPL's tick in the client's buffer, so finding it in Kafka proves the flush on exit.
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "--source", "yahoo", "--symbols", "AAPL,SLOW",
         "--yahoo-base-url", source_server.url, "--interval", "1h", "--http-timeout", "30m",
         "--ticks-topic", topic, "--dead-letter-topic", dead, "--kafka-linger-ms", "60000"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(
            lambda: proc.poll() is not None or source_server.requests_to(chart + "SLOW"),
            180, "the request for SLOW",
        )  # fmt: skip
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        [slow] = source_server.requests_to(chart + "SLOW")
        assert slow.started.wait(60)  # SLOW's answer is trickling in; AAPL's tick was handed over
        signalled = time.monotonic()
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert took < 10, f"stopping took {took:.1f}s"
    assert "Traceback" not in stderr
    summary = re.search(r"summary source=yahoo fetched=(\d+) published=(\d+)", stderr)
    assert summary and summary.groups() == ("1", "1"), stderr[-2000:]
    assert slow.client_left.wait(10)
    [record] = read_topic(services.bootstrap_servers, topic, 1)
    assert Tick.from_record(record.key, record.value).symbol == "AAPL"
