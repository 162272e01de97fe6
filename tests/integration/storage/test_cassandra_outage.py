"""Cassandra stopped for about 10 s mid-stream: the writer waits, commits nothing it has not
written, and after the restart every tick is stored exactly once."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from kafka import KafkaProducer

from common.contract import now_ms
from tests.conftest import wait_for_session
from tests.integration.storage.conftest import (
    all_committed,
    committed_offsets,
    stored_tick_count,
    tick_keys,
    wait_until,
)
from tests.integration.storage.test_storage_flow import make_ticks

OUTAGE_S = 10.0


@pytest.mark.slow
def test_cassandra_stopped_mid_stream_then_restarted_loses_and_duplicates_nothing(
    services, storage_settings, run_storage, kafka_admin, cassandra_session, caplog
):
    if services.stack is None:
        pytest.skip("needs a stack the harness controls (run with the service env vars unset)")
    stack, s = services.stack, storage_settings
    # The stream lasts until the test has seen the outage and the recovery (at most this many).
    ticks = make_ticks(30_000, ["AAPL", "MSFT", "AMZN", "TSLA"], now_ms() - 900_000)
    sent: list = []  # ticks Kafka acknowledged, in order
    stop_stream, produced = threading.Event(), threading.Event()

    def stream() -> None:
        # About 100 ticks/s until stopped: ticks arrive before, during and after the outage.
        producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=5)
        try:
            for i in range(0, len(ticks), 50):
                if stop_stream.is_set():
                    break
                chunk = ticks[i : i + 50]
                for t in chunk:
                    producer.send(s.ticks_topic, key=t.symbol.encode(), value=t.to_json())
                producer.flush(timeout=30)
                sent.extend(chunk)
                stop_stream.wait(0.5)  # pacing the stream, not waiting for anything
        finally:
            producer.close()
            produced.set()

    with run_storage(s):
        threading.Thread(target=stream, name="stream", daemon=True).start()
        wait_until(lambda: stored_tick_count(cassandra_session, s.keyspace) >= 200, 120,
                   "the first ticks to be stored")  # fmt: skip
        stack.stop("cassandra")
        stopped_at = time.monotonic()
        # A batch written just before the node went away may still commit; once the writer has
        # failed a write and paused, nothing may be committed while Cassandra is down.
        caplog.set_level(logging.WARNING, logger="storage.consumer")
        wait_until(lambda: any("batch not stored" in r.getMessage() for r in caplog.records),
                   OUTAGE_S, "the writer to notice the outage")  # fmt: skip
        committed_while_down = committed_offsets(kafka_admin, s.consumer_group)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))  # the outage itself
        assert committed_offsets(kafka_admin, s.consumer_group) == committed_while_down
        assert not produced.is_set(), "the stream should still be flowing during the outage"
        assert sum(committed_while_down.values()) < len(sent)
        stack.start("cassandra")

        # Some more ticks after the restart, then the stream ends.
        after = len(sent) + 300
        wait_until(lambda: len(sent) >= after or produced.is_set(), 120, "ticks after restart")
        stop_stream.set()
        wait_until(produced.is_set, 120, "the stream to finish")
        wait_until(lambda: all_committed(kafka_admin, s), 180, "every tick committed after restart")
        # The test's own session reconnects on its own schedule (backoff grows while the node
        # is down): wait for it, as every later test needs it too.
        wait_for_session(cassandra_session)

    keys = tick_keys(cassandra_session, s.keyspace)
    assert len(sent) >= 600
    assert len(keys) == len(sent)
    assert set(keys) == {(t.symbol, t.ts, t.seq) for t in sent}
