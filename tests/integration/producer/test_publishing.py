"""The producer through the real Kafka: keys, order, nothing lost on SIGTERM, exact replay."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

from common.contract import Tick, dead_letter_bytes, read_dead_letter
from producer import simulated_ticks
from producer.publisher import Publisher
from producer.runner import runner_for
from producer.settings import parse_settings
from producer.sources import build_source
from producer.stats import ProducerCounters
from tests.integration.producer.conftest import read_topic, wait_for

ROOT = Path(__file__).resolve().parents[3]
START_MS = 1_750_000_000_000


def run_in_process(argv: list[str], bootstrap: str) -> ProducerCounters:
    settings = parse_settings(argv, {"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    stop = threading.Event()
    counters = ProducerCounters()
    source = build_source(settings, stop)
    runner_for(settings, source, Publisher(settings, counters, source.name), counters, stop).run()
    return counters


def test_n_ticks_for_m_symbols_arrive_keyed_and_in_order_per_symbol(services, make_topic):
    topic, dead = make_topic(partitions=3), make_topic(suffix="_dl")
    symbols = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "BRK.B"]
    n = 6000
    argv = ["--symbols", ",".join(symbols), "--ticks-topic", topic, "--dead-letter-topic", dead,
            "--sim-seed", "11", "--sim-rate", "0", "--sim-start", str(START_MS),
            "--max-ticks", str(n)]  # fmt: skip
    counters = run_in_process(argv, services.bootstrap_servers)
    assert (counters.fetched, counters.published, counters.delivery_failed) == (n, n, 0)

    records = read_topic(services.bootstrap_servers, topic, n)
    assert len(records) == n
    expected = list(simulated_ticks(11, symbols, n, start_ms=START_MS))
    got_by_symbol: dict[str, list[Tick]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        tick = Tick.from_json(r.value, now=START_MS)
        assert r.key == tick.symbol.encode()
        partitions[r.key].add(r.partition)
        got_by_symbol[tick.symbol].append(tick)
    assert all(len(p) == 1 for p in partitions.values())  # one symbol, one partition
    assert len(set().union(*partitions.values())) > 1  # and the symbols spread over partitions
    for symbol in symbols:
        assert got_by_symbol[symbol] == [t for t in expected if t.symbol == symbol]
    assert read_topic(services.bootstrap_servers, dead, 0, timeout_s=2) == []


def test_sigterm_mid_run_loses_nothing_fetched(services, make_topic):
    topic, dead = make_topic(partitions=3), make_topic(suffix="_dl")
    symbols = ["AAPL", "MSFT", "GOOG"]
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=services.bootstrap_servers, LOG_LEVEL="INFO")
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "--symbols", ",".join(symbols),
         "--ticks-topic", topic, "--dead-letter-topic", dead, "--sim-seed", "5",
         "--sim-rate", "400", "--sim-start", str(START_MS), "--kafka-linger-ms", "200"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Some ticks are in Kafka and more are in flight (linger 200 ms) when the signal lands.
        wait_for(lambda: read_topic(services.bootstrap_servers, topic, 50, 1), 60, "first ticks")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    summary = re.search(r"summary source=simulated fetched=(\d+) published=(\d+)", stderr)
    assert summary, stderr[-2000:]
    fetched, published = int(summary[1]), int(summary[2])
    assert fetched == published > 50

    records = read_topic(services.bootstrap_servers, topic, published)
    got = sorted((Tick.from_json(r.value, now=START_MS) for r in records), key=_order)
    expected = sorted(simulated_ticks(5, symbols, fetched, START_MS, rate=400), key=_order)
    assert got == expected


def _order(t: Tick):
    return (t.ts, t.symbol, t.seq)


def test_replay_reproduces_its_file_exactly_and_dead_letters_bad_rows(
    services, make_topic, tmp_path
):
    topic, dead = make_topic(partitions=2), make_topic(suffix="_dl")
    rows = []
    for i in range(300):
        symbol = ("AAPL", "MSFT", "GOOG")[i % 3]
        rows.append((symbol, 1_724_788_801_000 + i // 6, round(100 + i * 0.01, 2), i % 7))
    path = tmp_path / "ticks.csv"
    lines = ["symbol,timestamp,price,volume"] + [",".join(map(str, r)) for r in rows]
    lines.insert(50, "AAPL,1724788801008,-5,1")  # breaks the contract: a negative price
    lines.insert(100, "MSFT,not-a-time,1,1")
    path.write_text("\n".join(lines) + "\n")

    argv = ["--source", "replay", "--replay-file", str(path), "--replay-speed", "max",
            "--ticks-topic", topic, "--dead-letter-topic", dead]  # fmt: skip
    counters = run_in_process(argv, services.bootstrap_servers)
    assert (counters.published, counters.rejected) == (300, 2)

    records = read_topic(services.bootstrap_servers, topic, 300)
    got = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        t = Tick.from_json(r.value, now=START_MS)
        got[t.symbol].append((t.symbol, t.ts, t.price, t.volume))
    for symbol in ("AAPL", "MSFT", "GOOG"):
        assert got[symbol] == [r for r in rows if r[0] == symbol]

    letters = [read_dead_letter(r.value) for r in read_topic(services.bootstrap_servers, dead, 2)]
    assert len(letters) == 2
    reasons = " | ".join(d["reason"] for d in letters)
    assert "price must be a finite number above 0" in reasons and "line" in reasons
    assert all(d["stage"] == "producer" for d in letters)
    assert any(b'"price": -5' in dead_letter_bytes(d["payload"]) for d in letters)
