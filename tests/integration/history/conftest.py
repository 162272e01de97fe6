"""History on the real services: storage (`python -m storage`) on this test's own topics and
keyspace, the producer's backfill as the user runs it, and the sources' history stand-in
(stack.history_stand_in) in place of Yahoo and Stooq."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from common.polling import wait_until
from stack.history_stand_in import HistoryStandIn
from stack.settings import free_port
from stack.supervisor import Supervisor
from tests.integration.dashboard.conftest import (  # noqa: F401 - fixtures used here
    REPO,
    dashboard_env,
    schema_keyspace,
    topics,
)


@pytest.fixture
def market() -> Iterator[HistoryStandIn]:
    stand_in = HistoryStandIn().start()
    yield stand_in
    stand_in.stop()


@dataclass
class History:
    env: dict[str, str]
    stages: Supervisor
    session: Any
    keyspace: str
    market: HistoryStandIn

    def backfill(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
        """`python -m producer backfill ARGS` against the stand-in; its result."""
        return subprocess.run(
            [sys.executable, "-m", "producer", "backfill", *args,
             "--yahoo-base-url", self.market.url, "--stooq-base-url", self.market.url],
            env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
            check=False,
        )  # fmt: skip

    def rows(self, symbol: str, interval: str) -> dict[int, tuple]:
        """Every stored bar of symbol/interval: start ms -> (open, high, low, close, volume,
        source, writetime)."""
        from common.buckets import bar_buckets
        from common.contract import now_ms
        from storage.rows import DAY_MS, utc_day

        found = {}
        statement = self.session.prepare(
            f"SELECT start, open, high, low, close, volume, source, WRITETIME(close) "  # noqa: S608
            f"FROM {self.keyspace}.bars WHERE symbol = ? AND interval = ? AND bucket = ?"
        )
        for day in bar_buckets(interval, 0 if interval == "1d" else now_ms() - 60 * DAY_MS,
                               now_ms() + DAY_MS):  # fmt: skip
            if interval == "1d" and day < (now_ms() // DAY_MS) - 3 * 366:
                break
            for r in self.session.execute(statement, (symbol, interval, utc_day(day * DAY_MS))):
                found[_utc_ms(r.start)] = (r.open, r.high, r.low, r.close, r.volume, r.source, r[7])
        return found

    def wait_rows(self, symbol: str, interval: str, count: int, timeout_s: float = 120) -> dict:
        return wait_until(
            lambda: (rows := self.rows(symbol, interval)) and len(rows) >= count and rows,
            timeout_s,
            f"{count} {interval} bars of {symbol} in Cassandra",
            every_s=0.5,
            check=self.stages.check,
            describe=self.stages.tails,
        )


def _utc_ms(naive) -> int:
    from datetime import timezone

    return int(naive.replace(tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture
def history(services, topics, schema_keyspace, cassandra_session, market, tmp_path):  # noqa: F811
    """Storage running on this test's topics and keyspace; backfills go to its bars topic."""
    env = dashboard_env(services, topics, schema_keyspace, free_port())
    stages = Supervisor(tmp_path / "logs", env, cwd=REPO, grace_s={"storage": 30.0})
    try:
        stages.start("storage")
        stages.wait_ready("storage", 120)
        yield History(env, stages, cassandra_session, schema_keyspace, market)
    finally:
        stages.stop_all()
