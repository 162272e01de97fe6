"""`make local`: the whole pipeline on this machine without Docker.

Starts the native stack, applies the schema, then runs storage, processor and producer as child
processes. Ctrl-C (or SIGTERM) stops them in data-flow order: the producer first (it flushes what
it fetched), then the processor and storage (each finishes and commits its batch in flight),
then the services. Nothing is lost: what is in Kafka and not yet consumed stays in the run
directory, and the next `make local` carries on from the committed offsets and checkpoints.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from dashboard.settings import DEFAULT_PORT as DASHBOARD_PORT
from stack import artifacts
from stack.native import NativeStack, StackError
from stack.readiness import port_open
from stack.settings import StackSettings, free_port
from stack.stage_env import stage_env
from stack.supervisor import StageExited, Supervisor

logger = logging.getLogger(__name__)

# Seconds each stage gets to shut down cleanly after SIGTERM. The producer's own last word comes
# sooner: its default stop timeout (30 s) plus the margin of producer.__main__.stop_deadline.
_STOP_GRACE_S = {"producer": 70.0, "processor": 60.0, "storage": 60.0, "dashboard": 10.0}


@dataclass(frozen=True)
class LocalSettings:
    stack: StackSettings
    # None: the stage's own default.
    symbols: str | None
    source: str | None
    interval: float | None
    windows: str | None
    keyspace: str = "stocks"
    # Producers in the fleet (producer.fleet): they share the symbols out through ZooKeeper.
    producers: int = 1

    @property
    def logs_dir(self) -> Path:
        return self.stack.run_dir / "pipeline"


# In data-flow order from the sink back: readers first, so nothing they should read is missed.
# The dashboard only watches: started first, it is stopped last.
STAGES = ("dashboard", "storage", "processor", "producer")


class LocalPipeline:
    def __init__(self, settings: LocalSettings):
        self.settings = settings
        self.stack = NativeStack(settings.stack, tie_to_parent=True)
        self._stop = threading.Event()
        self.stages: Supervisor | None = None
        extra = range(2, settings.producers + 1)
        more = {f"producer-{n}": _STOP_GRACE_S["producer"] for n in extra}
        self._grace_s = {**_STOP_GRACE_S, **more}

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def _env(self) -> dict[str, str]:
        settings = self.settings
        base = {**os.environ, **self.stack.env()}
        # Nothing given (None): the stage's own default, as under `make up`.
        return stage_env(
            base,
            SYMBOLS=settings.symbols,
            PRICE_SOURCE=settings.source,
            WINDOWS=settings.windows,
            FETCH_INTERVAL=settings.interval,
            CASSANDRA_KEYSPACE=settings.keyspace,
            CHECKPOINT_DIR=self.checkpoint_dir,
            SPARK_JARS=self._spark_jars(),
            SPARK_MASTER=base.get("SPARK_MASTER", "local[2]"),
            DASHBOARD_PORT=base.get("DASHBOARD_PORT") or str(self._dashboard_port()),
            # The producers join a fleet on the stack's own ZooKeeper, however many there are.
            ZOOKEEPER_HOSTS=self.settings.stack.zookeeper_connect,
        )

    @staticmethod
    def _dashboard_port() -> int:
        # The dashboard's own default unless something else holds it: a busy port should not
        # stop the pipeline.
        return free_port() if port_open("127.0.0.1", DASHBOARD_PORT) else DASHBOARD_PORT

    @property
    def checkpoint_dir(self) -> Path:
        # A checkpoint holds offsets of one Kafka cluster: the 3-node one keeps its own.
        stack = self.settings.stack
        name = "checkpoints" if stack.nodes == 1 else f"checkpoints-{stack.nodes}-nodes"
        return stack.run_dir / name

    def _spark_jars(self) -> list[Path]:
        stack = self.settings.stack
        try:
            return artifacts.spark_kafka_jars(stack.cache_dir, stack.mvn)
        except artifacts.ResolveError as e:
            raise StackError(str(e)) from e

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        failed = False
        try:
            self.stack.up()
            env = self._env()
            init = subprocess.run(
                [sys.executable, "-m", "storage", "init-schema"],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if init.returncode != 0:
                logger.error("applying the schema failed:\n%s", init.stderr[-3000:])
                return 1
            self.stages = Supervisor(
                self.settings.logs_dir, env, grace_s=self._grace_s, tie_to_parent=True
            )
            for name in STAGES:
                self.stages.start(name)
            for n in range(2, self.settings.producers + 1):
                self.stages.start(f"producer-{n}", [sys.executable, "-m", "producer"])
            self._print_where_to_look(env["DASHBOARD_PORT"])
            while not self._stop.wait(1.0):
                try:
                    self.stages.check()
                except StageExited as e:
                    logger.error("%s; stopping the pipeline", e)
                    failed = True
                    break
        finally:
            self._shutdown()
        return 1 if failed else 0

    def _shutdown(self) -> None:
        # Ignore a second Ctrl-C while stopping: an interrupted shutdown is what loses data.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if self.stages is not None:
            self.stages.stop_all()
        self.stack.down()
        logger.info("pipeline stopped; data kept in %s", self.settings.stack.run_dir)

    def _producers_line(self) -> str:
        n = self.settings.producers
        fleet = "1 producer" if n == 1 else f"{n} producers sharing them"
        return f"{fleet}: python -m producer symbols list|add|remove|set"

    def _print_where_to_look(self, dashboard_port: str) -> None:
        stack = self.settings.stack
        port = stack.cassandra_port
        query_env = "" if port == 9042 else f"CASSANDRA_PORT={port} "
        symbols = self.settings.symbols or "the producer's default"
        source = self.settings.source or "the producer's default"
        instances = ",".join(self.stack.instances())
        print(
            f"""
Stock-System is running natively. Press Ctrl-C to stop everything.
  symbols      {symbols}  (source: {source}; {self._producers_line()})
  dashboard    http://127.0.0.1:{dashboard_port}/
  Kafka        {stack.bootstrap_servers}   topics: ticks, aggregates, dead-letters
  Cassandra    cqlsh {stack.host} {stack.cassandra_port}   keyspace: {self.settings.keyspace}
               (README.md, "Query with cqlsh", has ready-made queries)
  query CLI    {query_env}python -m storage query latest
  logs         {self.settings.logs_dir}/{{producer,processor,storage,dashboard}}.log
  services     {stack.run_dir}/{{{instances}}}/
""",
            flush=True,
        )
