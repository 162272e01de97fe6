"""The hostile corpus the integration tests feed the stages: varied, and all of it refused."""

from collections import Counter

from common.contract import now_ms
from tests.hostile import corpus, overflow_in_sum_ticks, refused_by_contract


def test_the_corpus_is_varied_and_every_record_breaks_the_contract():
    now = now_ms()
    for kind, least in (("ticks", 20), ("aggregates", 27)):
        records = corpus(3000, kind, now, seed=7)
        assert len(records) == 3000
        kinds = Counter(r.kind for r in records)
        assert len(kinds) >= least, kinds
        assert all(refused_by_contract(kind, r) for r in records)
        assert any(r.value is None for r in records)
        assert any(r.key is None for r in records)


def test_overflow_in_sum_ticks_are_each_refused():
    records = overflow_in_sum_ticks("AAPL", now_ms() - 1000, 10)
    assert all(refused_by_contract("ticks", r) for r in records)
