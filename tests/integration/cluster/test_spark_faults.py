"""A Spark worker killed under load (issue #20, fault 5): the processor runs on a standalone
master with two workers (stack.spark), ticks flow at 1,000/s, and worker 1 dies with its
executor. The query carries on with the other worker, and the final aggregates equal
common.reference over every tick sent: none lost with the executor, none counted twice when
its tasks ran again.

Kafka is the suite's own: this fault is Spark's alone, so the three-node Kafka cluster would
only take cores from the two executors.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
from dataclasses import replace

import pytest

from common.contract import Tick
from common.polling import wait_until
from common.reference import aggregate, differences
from processor.settings import ProcessorSettings
from stack.spark import SparkStandalone
from tests.integration.cluster.conftest import report
from tests.integration.processor.conftest import T0, output_aggregates, start_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RATE = 1_000  # ticks/s, the floor
SYMBOLS = ["AAPL", "MSFT", "IBM", "NVDA", "AMZN", "TSLA"]
WINDOWS = (10_000, 60_000)
AFTER_KILL_S = 30


class Feed(threading.Thread):
    """Sends ticks at RATE, tick i at event time T0 + i ms (event time keeps pace with the
    sending, so none is late), until stopped; `sent` holds each one acknowledged."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.sent: list[Tick] = []
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from kafka import KafkaProducer

        rng = random.Random(5)
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=20)
        started = time.monotonic()
        try:
            while not self.halt.is_set():
                due = int((time.monotonic() - started) * RATE)
                chunk = [
                    Tick(SYMBOLS[i % len(SYMBOLS)], rng.randrange(1_000, 50_000) / 100,
                         rng.randrange(1, 500), T0 + i, "test", i)
                    for i in range(len(self.sent), due)
                ]  # fmt: skip
                futures = [producer.send(self.topic, key=t.key, value=t.to_json()) for t in chunk]
                producer.flush()
                for f in futures:
                    f.get(timeout=30)
                self.sent.extend(chunk)
                self.halt.wait(0.05)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            producer.close()


def counted(bootstrap: str, topic: str) -> int:
    """How many ticks the output accounts for so far (the 10 s windows' counts)."""
    return sum(a.count for a in output_aggregates(bootstrap, topic)[1].values()
               if a.window_ms == WINDOWS[0])  # fmt: skip


def test_killing_a_spark_worker_the_query_carries_on_with_the_other(
    services, make_topic, spark_jars, tmp_path
):
    bootstrap = services.bootstrap_servers
    settings = ProcessorSettings(
        bootstrap_servers=bootstrap,
        ticks_topic=make_topic(partitions=2, suffix="_ticks"),
        aggregates_topic=make_topic(suffix="_aggs"),
        dead_letter_topic=make_topic(suffix="_dead"),
        checkpoint_dir=tmp_path / "checkpoints",
    )
    settings = replace(settings, windows_ms=WINDOWS)
    spark = SparkStandalone(tmp_path / "spark", workers=2)
    log = tmp_path / "processor.log"
    feed = Feed(bootstrap, settings.ticks_topic)
    proc = None
    try:
        spark.up()
        proc = start_job(settings, spark_jars, log, SPARK_MASTER=spark.master_url,
                         PYSPARK_PYTHON=sys.executable, WINDOWS="10s,1m", WATERMARK="30s",
                         TRIGGER_INTERVAL="1s")  # fmt: skip

        def running() -> None:
            assert feed.error is None, feed.error
            if proc.poll() is not None:
                pytest.fail(f"processor exited with {proc.returncode}:\n{log.read_text()[-4000:]}")

        feed.start()
        # Spark's first batch on a cold machine takes minutes; then a while of steady flow.
        wait_until(lambda: counted(bootstrap, settings.aggregates_topic) > 0, 900,
                   "the first aggregates", every_s=1.0, check=running,
                   describe=lambda: log.read_text()[-4000:])  # fmt: skip
        before = len(feed.sent)
        wait_until(lambda: counted(bootstrap, settings.aggregates_topic) >= before, 300,
                   "the output caught up with the stream", every_s=1.0, check=running)  # fmt: skip

        spark.kill_worker(1)
        killed_at, at_kill = time.monotonic(), len(feed.sent)
        assert spark.alive_workers() in (
            [spark.worker_host(2)],
            [spark.worker_host(1), spark.worker_host(2)],
        )
        # Every tick sent before the kill is accounted for again: the query goes on past it.
        wait_until(lambda: counted(bootstrap, settings.aggregates_topic) >= at_kill, 300,
                   "the ticks sent before the kill in the output", every_s=0.5,
                   check=running)  # fmt: skip
        caught_up_s = time.monotonic() - killed_at
        time.sleep(max(0.0, AFTER_KILL_S - (time.monotonic() - killed_at)))  # the fault's length
        feed.halt.set()
        feed.join(60)
        running()
        sent = feed.sent
        assert len(sent) - at_kill >= RATE * AFTER_KILL_S * 0.8, "ticks flowed after the kill"
        expected = aggregate(sent, WINDOWS)
        wait_until(lambda: not differences(expected, output_aggregates(
                       bootstrap, settings.aggregates_topic)[1]),
                   600, "aggregates equal to the reference over every tick sent", every_s=2.0,
                   check=running,
                   describe=lambda: str(differences(expected, output_aggregates(
                       bootstrap, settings.aggregates_topic)[1])[:5]))  # fmt: skip
        report("spark-worker-kill", ticks=len(sent), caught_up_s=caught_up_s,
               workers_alive=len(spark.alive_workers()))  # fmt: skip
        # The kill reached the query: the driver lost the executor that worker ran.
        assert "Lost executor" in log.read_text() or "lost executor" in log.read_text().lower()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0, log.read_text()[-4000:]
    finally:
        feed.halt.set()
        if proc is not None and proc.poll() is None:
            proc.kill()
        spark.down()
