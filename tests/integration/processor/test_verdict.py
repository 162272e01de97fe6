"""Spark's verdict on a Kafka record is the contract's, record for record, on real Spark.

The processor judges a record in the JVM (processor.validation's fast path) and leaves what the
fast path does not accept to Tick.from_record (a Python UDF). Here the real plan functions run on
hostile records (tests/hostile.py: every kind the contract knows), boundary values and
hypothesis-generated records in many spellings, and for each record:
- refused by Tick.from_record: never accepted by the fast path, dead-lettered once with the
  contract's reason, the stage and its origin;
- accepted: aggregated with exactly the contract's fields, and the fast path accepted it whenever
  it is spelled as the producer writes ticks (Tick.to_json, keyed by symbol), so Python never
  sees the producer's ticks.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from common import contract
from common.contract import ContractError, Tick, read_dead_letter
from common.reference import aggregate
from processor import aggregation
from processor.parsing import STAGE
from tests.hostile import clipped_from, corpus, overflow_in_sum_ticks

# The records' Kafka timestamp: "now" for the future check (2023-11-14T22:13:20Z).
NOW = 1_700_000_000_000
TOPIC = "ticks-under-test"

Record = tuple[bytes | None, bytes | None, int]


def _contract(record: Record) -> Tick | str:
    key, value, kafka_ts = record
    try:
        return Tick.from_record(key, value, now=kafka_ts if kafka_ts > 0 else None)
    except ContractError as e:
        return str(e)


def _plain(t: Tick) -> bool:
    """The tick's text needs no JSON escape (as every source name the producer uses)."""
    return all(c.isascii() and c.isprintable() and c not in '"\\' for c in t.source)


def _fields(t: Tick) -> tuple:
    return (t.symbol, t.price, t.volume, t.ts, t.seq)


def _frame(spark, records: list[Record]):
    rows = [(k, v, ts, TOPIC, 0, i) for i, (k, v, ts) in enumerate(records)]
    schema = "key binary, value binary, kafka_ms long, topic string, partition int, offset long"
    return (
        spark.createDataFrame(rows, schema)
        .withColumn("timestamp", F.timestamp_millis("kafka_ms"))
        .drop("kafka_ms")
    )


def check_verdicts(spark, records: list[Record]) -> None:
    frame = _frame(spark, records).cache()
    try:
        fast = {
            r["offset"]: r[aggregation.JVM_TICK]
            for r in aggregation.with_jvm_verdict(frame)
            .select("offset", aggregation.JVM_TICK)
            .collect()
        }
        # Through the exchange every branch reads, as in the query (a tick's raw key and value
        # are dropped there: a dead letter must still get them).
        checked = aggregation.behind_one_exchange(aggregation.with_jvm_verdict(frame), 2)
        ticks = Counter(tuple(r) for r in aggregation.valid_ticks(checked).collect())
        written = aggregation.dead_letters(checked).collect()
        letters = [read_dead_letter(r["value"]) for r in written]
    finally:
        frame.unpersist()

    expected_ticks: Counter = Counter()
    expected_letters = {}
    for offset, record in enumerate(records):
        verdict = _contract(record)
        if isinstance(verdict, str):
            assert fast[offset] is None, f"fast path accepted a refused record: {record}"
            expected_letters[offset] = verdict
            continue
        expected_ticks[_fields(verdict)] += 1
        if fast[offset] is not None:
            assert tuple(fast[offset]) == _fields(verdict), record
        key, value, kafka_ts = record
        if value == verdict.to_json() and key == verdict.key and kafka_ts > 0 and _plain(verdict):
            assert fast[offset] is not None, f"the producer's spelling went to Python: {record}"

    assert ticks == expected_ticks
    by_offset = {}
    for letter in letters:
        assert letter["origin"]["topic"] == TOPIC and letter["origin"]["partition"] == 0
        offset = letter["origin"]["offset"]
        assert offset not in by_offset, f"dead-lettered twice: {letter}"
        assert letter["stage"] == STAGE
        by_offset[offset] = letter["reason"]
        value = records[offset][1]
        assert clipped_from(letter["payload"], value)
    assert by_offset == expected_letters


def _spellings(t: Tick) -> list[bytes]:
    """One valid tick written in ways json.loads reads alike."""
    fields = json.loads(t.to_json())
    without_seq = {k: v for k, v in fields.items() if k != "seq"} if t.seq == 0 else fields
    return [
        t.to_json(),
        json.dumps(fields).encode(),  # spaces after the separators
        json.dumps(dict(reversed(list(fields.items())))).encode(),  # another field order
        json.dumps(without_seq, separators=(",", ":")).encode(),
        json.dumps({**fields, "volume": float(t.volume)}, separators=(",", ":")).encode(),
        json.dumps({**fields, "extra": {"nested": [1, None]}}).encode(),
        b"\xef\xbb\xbf" + t.to_json(),  # a UTF-8 byte-order mark: json.loads skips it
        b" \n" + t.to_json() + b"\n",
        t.to_json().replace(b'"symbol"', b'"\\u0073ymbol"'),
        json.dumps(fields, ensure_ascii=True).encode().replace(b"e", b"E"),
    ]


def _edge_ticks() -> list[Tick]:
    day = contract.MAX_FUTURE_MS
    base = Tick("AAPL", 1.0, 1, NOW, "edge", 0)
    prices = [contract.MIN_PRICE, contract.MAX_PRICE, math.nextafter(contract.MIN_PRICE, 0),
              math.nextafter(contract.MAX_PRICE, math.inf), 1e-5, 123.456e3]  # fmt: skip
    out = [Tick(base.symbol, p, 1, NOW, "edge") for p in prices]
    out += [Tick("MSFT", 1.0, v, NOW, "edge") for v in (0, contract.MAX_VOLUME,
                                                         contract.MAX_VOLUME + 1)]  # fmt: skip
    out += [Tick("MSFT", 1.0, 1, NOW, "edge", s) for s in (contract.MAX_SEQ, contract.MAX_SEQ + 1)]
    out += [Tick("IBM", 1.0, 1, ts, "edge") for ts in (contract.EARLIEST_TS_MS,
            contract.EARLIEST_TS_MS - 1, NOW + day, NOW + day + 1)]  # fmt: skip
    out += [Tick(s, 1.0, 1, NOW, "x" * n) for s in ("A", "X" * 15, "BRK.B", "^GSPC", "EUR=X")
            for n in (1, contract.MAX_SOURCE_CHARS)]  # fmt: skip
    out.append(Tick("AAPL", 1.0, 1, NOW, "x" * (contract.MAX_SOURCE_CHARS + 1)))
    return out


def test_the_plan_scans_a_batch_once_for_all_its_branches(spark, capsys):
    """Fast-path ticks, ticks only Python accepts and dead letters all read one exchange: the
    batch is scanned and judged once (Spark would run a union's shared part once per branch)."""
    ticks = [Tick("AAPL", 1.5, 10, NOW - i, "test", i) for i in range(50)]
    records = [(t.key, t.to_json(), NOW) for t in ticks] + [(b"AAPL", b"{", NOW)]
    frame = _frame(spark, records).cache()
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    # Without adaptive execution, explain() shows the plan as it runs (as in streaming, where
    # Spark turns it off).
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        out = aggregation.plan(frame, (10_000, 60_000), 30_000, "aggs", "dead", 2)
        capsys.readouterr()
        out.explain()
        executed = capsys.readouterr().out
        topics = Counter(r["topic"] for r in out.collect())
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)
        frame.unpersist()
    assert executed.count("InMemoryTableScan") == 1, executed
    assert executed.count("ReusedExchange") == 2, executed
    # ...and it is the plan that gives both outputs.
    assert topics == {"aggs": len(aggregate(ticks, (10_000, 60_000))), "dead": 1}


def test_hostile_corpus_and_edges_get_the_contracts_verdict(spark):
    records: list[Record] = [(h.key, h.value, NOW) for h in corpus(3000, "ticks", NOW, seed=11)]
    records += [(h.key, h.value, NOW) for h in overflow_in_sum_ticks("AAPL", NOW - 1000, 20)]
    for t in _edge_ticks():
        records += [(t.key, value, NOW) for value in _spellings(t)]
        records += [(b"OTHER", t.to_json(), NOW), (t.key, t.to_json(), NOW - 2 * 86_400_000)]
    valid = sum(not isinstance(_contract(r), str) for r in records)
    assert valid > 100 and len(records) - valid > 3000, "the corpus has both kinds"
    check_verdicts(spark, records)


symbols = st.from_regex(contract.SYMBOL_PATTERN.pattern.rstrip("$") + r"\Z")
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),  # fmt: skip
    max_leaves=8,
)
ticks = st.builds(
    Tick,
    symbol=symbols,
    price=st.one_of(
        st.floats(contract.MIN_PRICE / 2, contract.MAX_PRICE * 2),
        st.integers(-10, 2 * int(contract.MAX_PRICE)),
    ),
    volume=st.integers(-1, contract.MAX_VOLUME + 2),
    ts=st.integers(contract.EARLIEST_TS_MS - 2, NOW + contract.MAX_FUTURE_MS + 2),
    source=st.text(min_size=0, max_size=contract.MAX_SOURCE_CHARS + 1),
    seq=st.integers(-1, contract.MAX_SEQ + 1),
)


@st.composite
def records(draw) -> Record:
    t = draw(ticks)
    kind = draw(st.sampled_from(["tick", "spelling", "field", "bytes", "json", "key"]))
    key: bytes | None = t.key if t.symbol.isascii() else t.symbol.encode("utf-8", "surrogatepass")
    if kind == "tick":
        value = t.to_json()
    elif kind == "spelling":
        value = draw(st.sampled_from(_spellings(t)))
    elif kind == "field":
        fields = json.loads(t.to_json())
        fields[draw(st.sampled_from(sorted(fields)))] = draw(json_values)
        value = json.dumps(fields, separators=(",", ":")).encode()
    elif kind == "bytes":
        value = draw(st.binary(max_size=200))
    elif kind == "json":
        value = json.dumps(draw(json_values)).encode()
    else:
        value = t.to_json()
        key = draw(st.none() | st.binary(max_size=16))
    kafka_ts = draw(st.sampled_from([NOW, NOW, NOW, t.ts, 0]))
    return key, value, kafka_ts


@pytest.mark.slow
@settings(
    max_examples=8,
    deadline=None,
    # Every example is a Spark job: shrinking a failure could take many minutes, so a failing
    # batch is reported as found (it is small already: at most 150 records).
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],  # fmt: skip
)
@given(batch=st.lists(records(), min_size=1, max_size=150))
def test_generated_records_get_the_contracts_verdict(spark, batch):
    check_verdicts(spark, batch)
