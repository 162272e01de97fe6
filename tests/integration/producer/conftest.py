from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from common.polling import poll_paced, wait_until
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
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for batch in poll_paced(consumer, 500).values():
                records += [Record(r.key, r.value, r.partition, r.offset) for r in batch]
            if len(records) >= expected:
                for batch in poll_paced(consumer, 1000).values():
                    records += [Record(r.key, r.value, r.partition, r.offset) for r in batch]
                break
    finally:
        consumer.close()
    return records


# The one deadline loop of the project, under the name these tests have always used.
wait_for = wait_until
