from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest

from common.polling import WaitTimeout, poll_paced, wait_until
from tests.unit.producer.servers import SourceServer


@pytest.fixture
def source_server():
    server = SourceServer().start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    partition: int
    offset: int


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list[Record]:
    """Every record of a topic once `expected` have arrived (or the deadline passed), plus a
    short extra poll so that surplus records would show up too."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Record] = []

    def read(timeout_ms: int) -> int:
        for batch in poll_paced(consumer, timeout_ms).values():
            records.extend(Record(r.key, r.value, r.partition, r.offset) for r in batch)
        return len(records)

    try:
        with contextlib.suppress(WaitTimeout):  # the callers' counts say what is missing
            wait_until(lambda: read(500) >= expected, timeout_s, f"{expected} records of {topic}")
        read(1000)
    finally:
        consumer.close()
    return records


# The one deadline loop of the project, under the name these tests have always used.
wait_for = wait_until
