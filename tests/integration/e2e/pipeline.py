"""The whole pipeline as the user runs it, for the end-to-end tests: what a run publishes
(`Run`), and producer, processor and storage as subprocesses, started, killed and read back
(`Pipeline`).

Each test gets its own topics, keyspace, consumer group and checkpoint directory, so runs never
see each other's data. The producer publishes seeded simulated ticks (`--sim-seed`, `--sim-start`),
which `producer.simulated_ticks` regenerates exactly: that list is what the tables must end up
holding, and what the reference aggregation is computed from. A run of a fixed count ends by
itself (`--max-ticks`); an open run (count None) streams until the test stops the producer, and
the count it published (its summary line) says which prefix of that list is expected: a fault
test's stream then lasts until the fault has happened, however slow the machine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from common.contract import Aggregate, Tick, now_ms
from common.polling import WaitTimeout, wait_until
from common.reference import aggregate, differences
from producer import simulated_ticks
from stack.stage_env import REPO
from stack.supervisor import StageExited, Supervisor

# Seconds each stage gets to stop on SIGTERM before it is killed. The producer bounds its own
# stop (its STOP_TIMEOUT, 30 s, then at most 30 s more): killed sooner, a stop that had to give
# records up would show as a SIGKILL rather than as what the producer counted and logged.
_STOP_GRACE_S = {"storage": 30.0, "processor": 30.0, "producer": 70.0}
# The longest an open run streams before the producer stops by itself (a safety net: the test
# stops it long before, once its fault has happened).
OPEN_RUN_S = 15 * 60
_SUMMARY = re.compile(r"summary source=\S+ fetched=(\d+) published=(\d+) rejected=(\d+)")


@dataclass(frozen=True)
class Run:
    """What one pipeline run publishes: enough to regenerate every tick it sends."""

    symbols: tuple[str, ...]
    seed: int
    # None: open, until the test stops the producer (Pipeline.stop_producer), at most OPEN_RUN_S.
    count: int | None
    rate: float
    windows_ms: tuple[int, ...] = (10_000,)
    # Far above the event-time span of a run, so no tick can ever be behind the watermark,
    # however batches are cut or however long a fault holds a stage back: every tick must
    # count, and the plain reference aggregation is the expected result.
    watermark: str = "30m"
    start_ms: int = field(default_factory=now_ms)

    def __post_init__(self) -> None:
        assert self.max_ticks / self.rate < 25 * 60, "keep runs shorter than the watermark"

    @property
    def max_ticks(self) -> int:
        """What the producer is told to stop after: the count, or an open run's cap."""
        return self.count if self.count is not None else int(self.rate * OPEN_RUN_S)

    def ticks(self) -> list[Tick]:
        assert self.count is not None, "an open run's count is known once the producer stopped"
        return list(simulated_ticks(self.seed, self.symbols, self.count, self.start_ms, self.rate))


def symbols(n: int) -> tuple[str, ...]:
    return tuple(f"E2E{i:02d}" for i in range(n))


class StageDied(AssertionError):
    pass


class Pipeline:
    """Starts, kills and restarts the three stages; reads what they stored."""

    def __init__(self, env: dict[str, str], logs: Path, session, keyspace: str, topics: dict):
        self.env = env
        self.session = session
        self.keyspace = keyspace
        self.topics = topics
        self.stages = Supervisor(logs, env, cwd=REPO, grace_s=_STOP_GRACE_S)
        self.run: Run | None = None

    # --- stages ----------------------------------------------------------------------------

    def start(self, stage: str, extra: dict[str, str] | None = None) -> int:
        return self.stages.start(stage, env=extra, may_exit=stage == "producer")

    def start_producer(self, run: Run) -> int:
        self.run = run
        # It exits by design after MAX_TICKS (an open run's cap), or when stop_producer() asks.
        return self.start(
            "producer",
            {
                "PRICE_SOURCE": "simulated",
                "SYMBOLS": ",".join(run.symbols),
                "SIM_SEED": str(run.seed),
                "SIM_START": str(run.start_ms),
                "SIM_RATE": str(run.rate),
                "MAX_TICKS": str(run.max_ticks),
                "STATS_INTERVAL": "5s",
            },
        )

    def start_all(self, run: Run) -> None:
        """Storage and processor first; the producer once the processor's queries run, so the
        ticks flow through a warm pipeline at a steady rate."""
        self.start("storage")
        self.start(
            "processor",
            {"WINDOWS": ",".join(f"{w}ms" for w in run.windows_ms), "WATERMARK": run.watermark},
        )
        self.stages.wait_ready("storage", 120)
        self.stages.wait_ready("processor", 180)
        self.start_producer(run)

    def alive(self, stage: str) -> bool:
        return self.stages.alive(stage)

    def kill(self, stage: str) -> None:
        self.stages.kill(stage)

    def stop(self, stage: str) -> None:
        self.stages.stop(stage)

    def stop_all(self) -> dict[str, int | None]:
        return self.stages.stop_all()

    def check_alive(self) -> None:
        try:
            self.stages.check()
        except StageExited as e:
            raise StageDied(str(e)) from e

    def tail(self, stage: str, lines: int = 40) -> str:
        return self.stages.tail(stage, lines)

    # --- waiting ---------------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], object], timeout_s: float, what: str) -> object:
        """Poll predicate() until truthy; fail early if a stage died, and at the deadline."""
        return wait_until(
            predicate,
            timeout_s,
            what,
            every_s=0.25,
            check=self.check_alive,
            describe=self.stages.tails,
        )

    def wait_producer_done(self, timeout_s: float) -> None:
        self.wait_until(
            lambda: not self.stages.alive("producer"), timeout_s, "the producer to finish"
        )
        code = self.stages.exit_code("producer")
        assert code == 0, f"the producer exited with {code}:\n{self.tail('producer')}"
        self._take_count()

    def stop_producer(self, more_ticks: int = 0, timeout_s: float = 120.0) -> int:
        """End an open run: once `more_ticks` more ticks are in the ticks topic (so some flow
        through whatever a fault left behind), SIGTERM the producer; it flushes and exits 0.
        The run's count becomes what it published."""
        if more_ticks:
            target = self.produced() + more_ticks
            self.wait_until(lambda: self.produced() >= target, timeout_s,
                            f"{more_ticks} more ticks to be produced")  # fmt: skip
        self.stages.stop("producer")
        self.wait_producer_done(timeout_s)
        assert self.run is not None and self.run.count is not None
        return self.run.count

    def _take_count(self) -> None:
        """The run's count from the producer's summary line: every tick it fetched was
        published (none refused or lost), so they are the first `published` of the run."""
        run = self.run
        assert run is not None
        found = _SUMMARY.findall(self.stages.log_text("producer"))
        assert found, f"no summary line from the producer:\n{self.tail('producer')}"
        fetched, published, rejected = map(int, found[-1])
        assert fetched == published and rejected == 0, found[-1]
        if run.count is None:
            self.run = replace(run, count=published)
        else:
            assert published == run.count, f"published {published} of {run.count}"

    def produced(self) -> int:
        """Records in the ticks topic so far (the producer's, and any a test wrote there)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"], enable_auto_commit=False
        )
        try:
            topic = self.topics["ticks"]
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            return sum(consumer.end_offsets(tps).values())
        finally:
            consumer.close()

    # --- what is stored --------------------------------------------------------------------

    def stored_ticks(self) -> list[tuple]:
        return [
            (r.symbol, r.ts_ms, r.seq, r.price, r.volume, r.source)
            for r in self.session.execute(
                "SELECT symbol, toUnixTimestamp(ts) AS ts_ms, seq, price, volume, source "
                f"FROM {self.keyspace}.ticks"
            )
        ]

    def stored_tick_count(self) -> int:
        # A scan of the keys: count(*) over a table warns on every call, and runs are small.
        return len(list(self.session.execute(f"SELECT symbol FROM {self.keyspace}.ticks")))

    def stored_aggregates(self) -> dict[tuple[str, int, int], Aggregate]:
        rows = self.session.execute(
            "SELECT symbol, window_ms, toUnixTimestamp(window_start) AS start_ms, "
            "toUnixTimestamp(window_end) AS end_ms, open, high, low, close, avg, vwap, volume, "
            f"count FROM {self.keyspace}.aggregates"
        )
        result = {}
        for r in rows:
            agg = Aggregate(r.symbol, r.window_ms, r.start_ms, r.end_ms, r.open, r.high, r.low,
                            r.close, r.avg, r.vwap, r.volume, r.count)  # fmt: skip
            result[(agg.symbol, agg.window_ms, agg.window_start)] = agg
        return result

    def stored_latest(self) -> dict[str, tuple]:
        return {
            r.symbol: (r.symbol, r.ts_ms, r.seq, r.price, r.volume, r.source)
            for r in self.session.execute(
                "SELECT symbol, toUnixTimestamp(ts) AS ts_ms, seq, price, volume, source "
                f"FROM {self.keyspace}.latest_prices"
            )
        }

    def dead_letter_count(self) -> int:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"], enable_auto_commit=False
        )
        try:
            topic = self.topics["dead_letters"]
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            return sum(consumer.end_offsets(tps).values()) if tps else 0
        finally:
            consumer.close()

    # --- the exact check -------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Everything that differs from "each tick stored once, aggregates exact"; [] if none."""
        run = self.run
        assert run is not None, "start_producer() first"
        ticks = run.ticks()
        want = sorted((t.symbol, t.ts, t.seq, t.price, t.volume, t.source) for t in ticks)
        got = sorted(self.stored_ticks())
        problems = []
        if got != want:
            missing, extra = set(want) - set(got), set(got) - set(want)
            problems.append(
                f"ticks: {len(got)} stored, {len(want)} produced; {len(missing)} missing "
                f"(e.g. {sorted(missing)[:2]}), {len(extra)} unexpected (e.g. {sorted(extra)[:2]})"
            )
        problems += differences(aggregate(ticks, run.windows_ms), self.stored_aggregates())[:20]
        newest: dict[str, Tick] = {}
        for t in sorted(ticks, key=lambda t: (t.ts, t.seq)):
            newest[t.symbol] = t
        want_latest = {s: (t.symbol, t.ts, t.seq, t.price, t.volume, t.source)
                       for s, t in newest.items()}  # fmt: skip
        got_latest = self.stored_latest()
        if got_latest != want_latest:
            wrong = sorted(s for s in want_latest.keys() | got_latest.keys()
                           if want_latest.get(s) != got_latest.get(s))  # fmt: skip
            problems.append(f"latest_prices differ for {len(wrong)} symbols, e.g. {wrong[:3]}")
        return problems

    def dead_letters(self) -> list[dict]:
        """Every dead letter so far, checked against the contract and decoded."""
        from common.contract import read_dead_letter
        from tests.integration.storage.conftest import read_to_end

        topic = self.topics["dead_letters"]
        records = read_to_end(self.env["KAFKA_BOOTSTRAP_SERVERS"], topic)
        return [read_dead_letter(r.value) for r in records]

    def assert_exact(self, timeout_s: float = 120.0, dead_letters: int = 0) -> None:
        """Wait for the pipeline to drain into exactly the expected tables, then check again."""
        assert self.run is not None, "start_producer() first"
        if self.run.count is None:
            self.stop_producer(timeout_s=timeout_s)
        else:
            self.wait_producer_done(timeout_s)
        run = self.run
        assert run.count is not None
        # Counting first is cheap; the full comparison only runs once the count is right.
        self.wait_until(lambda: self.stored_tick_count() >= run.count, timeout_s,
                        f"{run.count} ticks to be stored")  # fmt: skip
        last: list[str] = []

        def exact() -> bool:
            last[:] = self.problems()
            return not last

        try:
            wait_until(exact, timeout_s, "the stored data to match", every_s=1.0,
                       check=self.check_alive, describe=lambda: "\n".join(last))  # fmt: skip
        except WaitTimeout as e:
            pytest.fail(f"the stored data never matched what was produced: {e}")
        assert self.stored_tick_count() == run.count
        assert self.dead_letter_count() == dead_letters, "valid ticks were dead-lettered"


def needs_own_stack(services):
    """The stack a fault test may stop and kill; skips when attached to a shared one."""
    if services.stack is None:
        pytest.skip("needs a stack the harness controls (run with the service env vars unset)")
    return services.stack
