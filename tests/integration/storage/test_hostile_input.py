"""Poison pills: thousands of hostile records between valid ones cannot stop storage.

Every hostile record is dead-lettered once, by this stage, with its reason and origin; every
valid tick around them is stored exactly once.
"""

from __future__ import annotations

import random

from common.contract import Tick, message_key, now_ms, read_dead_letter
from tests.hostile import corpus, overflow_in_sum_ticks
from tests.integration.storage.conftest import (
    all_committed,
    read_to_end,
    send_all,
    tick_keys,
    wait_until,
)


def test_storage_survives_a_hostile_corpus_and_stores_every_valid_tick_once(
    storage_settings, run_storage, kafka_admin, cassandra_session
):
    s = storage_settings
    now = now_ms()
    rng = random.Random(14)
    valid = [
        Tick(rng.choice(["AAPL", "MSFT", "GOOG"]), round(rng.uniform(1, 900), 2),
             rng.randrange(0, 5000), now - 300_000 + i, "test")
        for i in range(2000)
    ]  # fmt: skip
    hostile = [(s.ticks_topic, h) for h in corpus(9000, "ticks", now, seed=1)] + [
        (s.aggregates_topic, h) for h in corpus(1500, "aggregates", now, seed=2)
    ]
    hostile += [(s.ticks_topic, h) for h in overflow_in_sum_ticks("AAPL", now - 60_000, 50)]
    rng.shuffle(hostile)
    # Valid ticks spread evenly between the hostile ones.
    records, kinds = [], []
    step = len(hostile) // len(valid) + 1
    for i, tick in enumerate(valid):
        for topic, h in hostile[i * step : (i + 1) * step]:
            records.append((topic, h.key, h.value))
            kinds.append(h.kind)
        records.append((s.ticks_topic, message_key(tick.symbol), tick.to_json()))
        kinds.append(None)
    assert len(records) == len(valid) + len(hostile) >= 12_000
    origins = send_all(s.bootstrap_servers, records)

    with run_storage(s) as thread:
        wait_until(lambda: all_committed(kafka_admin, s), 300, "every record committed")
        assert thread.is_alive(), "storage stopped while reading hostile records"

    stored = tick_keys(cassandra_session, s.keyspace)
    assert len(stored) == len(set(stored)), "a tick stored twice"
    assert set(stored) == {t.identity for t in valid}

    written = read_to_end(s.bootstrap_servers, s.dead_letter_topic)
    letters = [read_dead_letter(r.value) for r in written]
    by_origin = {}
    for letter in letters:
        o = letter["origin"]
        by_origin.setdefault((o["topic"], o["partition"], o["offset"]), []).append(letter)
    expected = {origin for origin, kind in zip(origins, kinds, strict=True) if kind is not None}
    assert set(by_origin) == expected, "every hostile record dead-lettered, nothing else"
    assert all(len(v) == 1 for v in by_origin.values()), "a record dead-lettered twice"
    assert all(v[0]["reason"] and v[0]["stage"] == "storage" for v in by_origin.values())
