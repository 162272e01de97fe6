"""The pipeline under test: its own topics, keyspace and checkpoint, and its three stages."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.pipeline.settings import BenchSettings
from stack.endpoints import Endpoints
from stack.stage_env import REPO, stage_env
from stack.supervisor import Supervisor

# Every stage gets a minute to finish its batch in flight after SIGTERM before it is killed.
_STOP_GRACE_S = {"producer": 60.0, "processor": 60.0, "storage": 60.0}


@dataclass(frozen=True)
class Target:
    """Where this run's data goes: names of its own, so it never mixes with other data."""

    bootstrap_servers: str
    cassandra_hosts: tuple[str, ...]
    cassandra_port: int
    run_id: str
    checkpoint_dir: Path
    logs_dir: Path

    @classmethod
    def on(cls, services: Endpoints, run_id: str, work: Path, logs_dir: Path) -> Target:
        return cls(
            services.bootstrap_servers,
            services.cassandra_hosts,
            services.cassandra_port,
            run_id,
            work / "checkpoints",
            logs_dir,
        )

    @property
    def ticks_topic(self) -> str:
        return f"bench-{self.run_id}-ticks"

    @property
    def aggregates_topic(self) -> str:
        return f"bench-{self.run_id}-aggregates"

    @property
    def dead_letter_topic(self) -> str:
        return f"bench-{self.run_id}-dead-letters"

    @property
    def topics(self) -> list[str]:
        return [self.ticks_topic, self.aggregates_topic, self.dead_letter_topic]

    @property
    def keyspace(self) -> str:
        return f"bench_{self.run_id}"

    @property
    def group(self) -> str:
        return f"bench-storage-{self.run_id}"


def producer_env(symbols: list[str], rate: int, count: int) -> dict[str, str]:
    """The benchmarks' producer: `count` simulated ticks at `rate`/s over `symbols`, ticks only."""
    return {
        "PRICE_SOURCE": "simulated",
        "SYMBOLS": ",".join(symbols),
        "SIM_RATE": str(rate),
        "MAX_TICKS": str(count),
        "STATS_INTERVAL": "10s",
        # A producer backfills each symbol it starts following: for the 50 symbols of a
        # pipeline run, 378,000 bars through Kafka, storage and Cassandra in the first 50 s of
        # every rate, measured as if they were the ticks' cost. History has a benchmark of its
        # own (bench.history).
        "BACKFILL_RANGE": "0",
        "BACKFILL_DAILY_RANGE": "0",
    }


class Stages:
    """Storage, processor and producer as `make local` runs them, pointed at the target."""

    def __init__(
        self,
        target: Target,
        bench: BenchSettings,
        symbols: list[str],
        spark_jars: list[Path],
        **settings: object,
    ):
        """`settings`: further stage settings by their env names (CASSANDRA_CONSISTENCY=...)."""
        self.target = target
        self.symbols = symbols
        self.supervisor = Supervisor(
            target.logs_dir, self._env(bench, spark_jars, settings), cwd=REPO,
            grace_s=_STOP_GRACE_S,
        )  # fmt: skip

    def _env(
        self, bench: BenchSettings, spark_jars: list[Path], settings: dict[str, object]
    ) -> dict[str, str]:
        t = self.target
        return stage_env(
            os.environ,
            **settings,
            KAFKA_BOOTSTRAP_SERVERS=t.bootstrap_servers,
            TICKS_TOPIC=t.ticks_topic,
            AGGREGATES_TOPIC=t.aggregates_topic,
            DEAD_LETTER_TOPIC=t.dead_letter_topic,
            CASSANDRA_HOSTS=t.cassandra_hosts,
            CASSANDRA_PORT=t.cassandra_port,
            CASSANDRA_KEYSPACE=t.keyspace,
            CONSUMER_GROUP=t.group,
            CHECKPOINT_DIR=t.checkpoint_dir,
            SPARK_MASTER=bench.spark_master,
            SPARK_JARS=spark_jars,
            WINDOWS=[f"{w}ms" for w in bench.windows_ms],
            LOG_LEVEL="INFO",
        )

    def processor_batch_min(self) -> int:
        """The records a processor batch waits for (MIN_OFFSETS_PER_TRIGGER), as it parses its
        settings from the environment the benchmark gives it."""
        from processor.settings import parse_settings

        return parse_settings([], self.supervisor.env).min_offsets_per_trigger or 0

    def start_readers(self) -> None:
        """Storage and the processor, waited for until each says it is consuming."""
        self.supervisor.start("storage")
        self.supervisor.start("processor")
        self.supervisor.wait_ready("processor", 180)
        self.supervisor.wait_ready("storage", 120)

    def start_producer(self, rate: int, count: int, log_name: str | None = None) -> None:
        """The simulated producer publishing `count` ticks at `rate`/s, then exiting."""
        self.supervisor.start(
            "producer",
            env=producer_env(self.symbols, rate, count),
            may_exit=True,
            log_name=log_name or f"producer-{rate}",
        )

    def producer_done(self) -> bool:
        return not self.supervisor.alive("producer")

    def producer_exit_code(self) -> int | None:
        return self.supervisor.exit_code("producer")

    def check(self) -> None:
        """Raise if a reader has exited: the figures would mean nothing."""
        self.supervisor.check()

    def stop_all(self) -> None:
        """In data-flow order: the producer, then the processor, then storage."""
        self.supervisor.stop_all()
