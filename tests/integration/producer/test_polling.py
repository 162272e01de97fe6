"""A polled source on its schedule, against a local server, into the real Kafka."""

from __future__ import annotations

import threading

from common.contract import Tick, read_dead_letter
from producer.publisher import Publisher
from producer.runner import runner_for
from producer.settings import parse_settings
from producer.sources import build_source
from producer.stats import ProducerCounters
from tests.integration.producer.conftest import read_topic, wait_for
from tests.unit.producer.servers import YAHOO_NOT_FOUND, Answer, yahoo_chart


def test_polling_skips_unchanged_quotes_and_dead_letters_bad_ones(
    services, make_topic, source_server
):
    topic, dead = make_topic(partitions=3), make_topic(suffix="_dl")
    now_s = 1_724_788_801
    same = Answer(body=yahoo_chart("AAPL", 230.49, now_s))
    newer = Answer(body=yahoo_chart("AAPL", 230.55, now_s + 60))
    source_server.script("/v8/finance/chart/AAPL", same, same, newer)
    source_server.script("/v8/finance/chart/NOPE", Answer(404, YAHOO_NOT_FOUND))
    # A price below zero: the contract refuses it, so it must reach the dead letters only.
    source_server.script("/v8/finance/chart/BAD", Answer(body=yahoo_chart("BAD", -1.0, now_s)))
    source_server.script("/v8/finance/chart/DOWN", Answer(503, b"unavailable"))

    settings = parse_settings(
        ["--source", "yahoo", "--symbols", "AAPL,NOPE,BAD,DOWN", "--interval", "1",
         "--yahoo-base-url", source_server.url, "--ticks-topic", topic,
         "--dead-letter-topic", dead, "--http-retries", "1", "--http-backoff", "10ms"],
        {"KAFKA_BOOTSTRAP_SERVERS": services.bootstrap_servers},
    )  # fmt: skip
    stop = threading.Event()
    counters = ProducerCounters()
    source = build_source(settings, stop)
    runner = runner_for(settings, source, Publisher(settings, counters, "yahoo"), counters, stop)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        wait_for(
            lambda: len(source_server.requests_to("/v8/finance/chart/AAPL")) >= 3, 30, "3 rounds"
        )
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()

    ticks = [Tick.from_json(r.value) for r in read_topic(services.bootstrap_servers, topic, 2)]
    assert [(t.symbol, t.price, t.ts) for t in ticks] == [
        ("AAPL", 230.49, now_s * 1000),
        ("AAPL", 230.55, (now_s + 60) * 1000),
    ]
    letters = [read_dead_letter(r.value) for r in read_topic(services.bootstrap_servers, dead, 2)]
    # Once each: an unchanged rejection is not repeated every round.
    assert sorted(d["origin"]["symbol"] for d in letters) == ["BAD", "NOPE"]
    assert counters.failed >= 2  # DOWN failed in every round, without stopping the others
    assert counters.unchanged >= 3
    requests = source_server.requests_to("/v8/finance/chart/AAPL")
    # Yahoo's floor of 2 s between rounds holds even though 1 s was asked for.
    assert requests[1].at - requests[0].at >= 1.9
