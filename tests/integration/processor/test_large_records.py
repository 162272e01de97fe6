"""Records as large as the broker takes (issue #18): the running query dead-letters each once,
with a bounded letter, and keeps aggregating; a dead-letter topic that cannot take a dead letter
stops the processor with exit 2 and what to change, instead of restarting the query on it."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from common.contract import DEAD_LETTER_MAX_BYTES, Tick, dead_letter_bytes, read_dead_letter
from common.polling import wait_until
from common.reference import aggregate, differences
from common.topics import record_limit
from processor import queries
from tests.hostile import large_records
from tests.integration.processor.conftest import (
    T0,
    keyed,
    run_until_dead_lettered,
    start_job,
)

REPO = Path(__file__).resolve().parents[3]
WINDOWS = (10_000, 60_000)


def _produce_large(bootstrap: str, topic: str, records) -> list[int]:
    from kafka import KafkaProducer

    # The client's own limit (1 MiB) is below the broker's largest record; raised to reach it.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             max_request_size=2 * 1024 * 1024)  # fmt: skip
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in records]
        producer.flush(timeout=120)
        return [f.get(timeout=60).offset for f in futures]
    finally:
        producer.close()


def test_records_up_to_the_brokers_limit_are_dead_lettered_and_aggregation_goes_on(
    spark, processor_settings
):
    settings = processor_settings(windows_ms=WINDOWS, max_offsets_per_trigger=50)
    rng = random.Random(18)
    valid = [
        Tick(rng.choice(["AAPL", "MSFT"]), rng.randrange(100, 50_000) / 100,
             rng.randrange(0, 1000), T0 + rng.randrange(20_000), "test", i)
        for i in range(300)
    ]  # fmt: skip
    hostile = large_records()
    mixed = [(True, r) for r in keyed(valid)] + [(False, (h.key, h.value)) for h in hostile]
    rng.shuffle(mixed)

    query = queries.start(spark, settings, queries.Trigger(200))
    try:
        offsets = _produce_large(settings.bootstrap_servers, settings.ticks_topic,
                                 [r for _, r in mixed])  # fmt: skip
        hostile_at = {o: r for o, (good, r) in zip(offsets, mixed, strict=True) if not good}
        expected = aggregate(valid, WINDOWS)
        letters, final, tracker = run_until_dead_lettered(query, settings, expected, len(hostile))
    finally:
        query.stop()

    assert differences(expected, final) == []
    by_offset: dict[int, dict] = {}
    for record in letters:
        assert len(record.value) <= DEAD_LETTER_MAX_BYTES
        assert record.key is None or len(record.key) <= 64
        letter = read_dead_letter(record.value)
        offset = letter["origin"]["offset"]
        assert offset not in by_offset, f"dead-lettered twice: offset {offset}"
        by_offset[offset] = letter
    assert sorted(by_offset) == sorted(hostile_at)
    for offset, (key, value) in hostile_at.items():
        letter = by_offset[offset]
        assert letter["stage"] == "processor" and letter["reason"]
        assert letter["payload"]["sha256"] == hashlib.sha256(value).hexdigest()
        assert letter["payload"]["bytes"] == len(value)
        assert value.startswith(dead_letter_bytes(letter["payload"]))
        assert letter["key"]["sha256"] == hashlib.sha256(key).hexdigest()
    assert tracker.totals[queries.QUERY].dead_letters == len(hostile)


def _start(settings, jars, log: Path) -> subprocess.Popen:
    ready = log.with_name("processor.ready")
    return start_job(settings, jars, log, WINDOWS="10s", STARTING_OFFSETS="earliest",
                     READY_FILE=str(ready))  # fmt: skip


def _exit_code(proc: subprocess.Popen, log: Path, timeout_s: float) -> int:
    try:
        wait_until(lambda: proc.poll() is not None, timeout_s, "the processor to exit",
                   describe=lambda: log.read_text()[-3000:])  # fmt: skip
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    return proc.returncode


def _create_topic(admin, name: str, config: dict[str, str] | None = None) -> str:
    from kafka.admin import NewTopic

    admin.create_topics([NewTopic(name, 1, 1, topic_configs=config or {})])
    return name


@pytest.mark.slow
def test_a_dead_letter_topic_too_small_for_a_dead_letter_stops_the_start(
    processor_settings, spark_jars, kafka_admin, tmp_path
):
    base = processor_settings()
    small = _create_topic(kafka_admin, f"{base.dead_letter_topic}_small",
                          {"max.message.bytes": "2048"})  # fmt: skip
    from dataclasses import replace

    from tests.conftest import _delete_topics

    settings = replace(base, dead_letter_topic=small)
    log = tmp_path / "processor.log"
    try:
        proc = _start(settings, spark_jars, log)
        assert _exit_code(proc, log, 300) == 2, log.read_text()[-3000:]
    finally:
        _delete_topics(settings.bootstrap_servers, [small])
    text = log.read_text()
    assert "max.message.bytes" in text and small in text
    assert not (tmp_path / "processor.ready").exists(), "it ran its queries"


@pytest.mark.slow
def test_a_dead_letter_kafka_refuses_for_good_exits_2_without_restarts(
    processor_settings, spark_jars, kafka_admin, tmp_path
):
    """The dead-letter topic's limit lowered while the processor runs: the next dead letter is
    refused for good. A restart would meet the same record again, so the processor exits with 2
    and says what to change, at once, instead of restarting the query on it three times."""
    from kafka.admin import ConfigResource, ConfigResourceType

    settings = processor_settings()
    log = tmp_path / "processor.log"
    proc = _start(settings, spark_jars, log)
    try:
        bootstrap = settings.bootstrap_servers
        ready = tmp_path / "processor.ready"
        wait_until(lambda: ready.exists() or proc.poll() is not None, 300,
                   "the processor to start", describe=lambda: log.read_text()[-3000:])  # fmt: skip
        assert proc.poll() is None, log.read_text()[-3000:]
        kafka_admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.dead_letter_topic,
                            {"max.message.bytes": "1000"})]
        )  # fmt: skip
        wait_until(lambda: record_limit(bootstrap, settings.dead_letter_topic) == 1000, 60,
                   "the topic's new limit")  # fmt: skip
        _produce_large(bootstrap, settings.ticks_topic, [(b"AAPL", b"x" * 3000)])
        assert _exit_code(proc, log, 300) == 2, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert "RecordTooLargeException" in text and "not restarting" in text
    assert "restarting it from its checkpoint" not in text
