"""A Spark standalone cluster on this machine, from the pyspark wheel's own scripts: a master on
127.0.0.1 and worker n on 127.0.0.(n+1), so that each worker is a host of its own as the master
and the driver see it (and a killed one is told apart from the others).

The processor runs on `local[*]` by default, natively and in compose: on one machine a master,
workers and their executors are four more JVMs for the same cores (README: "Why Spark runs inside
the processor"). This cluster is for what only workers show: an executor lost with its worker
while the query runs (tests/integration/cluster), and `make up SPARK=cluster`'s shape natively.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from common.polling import wait_until
from stack import processes, readiness
from stack.settings import free_port

# Master and worker daemons only schedule; their executors are separate JVMs (--memory).
_DAEMON_HEAP = "256m"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass
class SparkStandalone:
    run_dir: Path
    workers: int = 2
    worker_cores: int = 1
    # What an executor asks of its worker by default (spark.executor.memory).
    worker_memory: str = "1g"
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    tie_to_parent: bool = True
    start_timeout_s: float = 300.0
    _pids: dict[str, int] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    def worker_host(self, n: int) -> str:
        return f"127.0.0.{n + 1}"

    def worker_names(self) -> list[str]:
        return [f"spark-worker-{n}" for n in range(1, self.workers + 1)]

    def up(self) -> None:
        self._spawn("spark-master", "org.apache.spark.deploy.master.Master",
                    "--host", self.host, "--port", str(self.port),
                    "--webui-port", str(self.ui_port))  # fmt: skip
        self._wait(
            "the Spark master", lambda: readiness.spark_master_ready(self.host, self.ui_port)
        )
        for n, name in enumerate(self.worker_names(), start=1):
            self._spawn(name, "org.apache.spark.deploy.worker.Worker",
                        "--host", self.worker_host(n), "--cores", str(self.worker_cores),
                        "--memory", self.worker_memory, "--webui-port", str(free_port()),
                        "--work-dir", str(self.run_dir / name / "work"),
                        self.master_url)  # fmt: skip
        for n in range(1, self.workers + 1):
            self._wait(f"Spark worker {n} registered", lambda n=n: self.registered(n))

    def registered(self, n: int) -> bool:
        return readiness.spark_worker_registered(self.host, self.ui_port, self.worker_host(n))

    def alive_workers(self) -> list[str]:
        """The hosts of the workers the master lists as ALIVE."""
        state = readiness.master_state(self.host, self.ui_port) or {}
        return sorted(w["host"] for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def kill_worker(self, n: int) -> None:
        """SIGKILL worker n's process group: the worker and the executors it launched, as when
        its machine dies."""
        processes.kill(self._pids[f"spark-worker-{n}"])

    def down(self) -> None:
        for name in reversed(list(self._pids)):
            processes.terminate(self._pids[name], grace_s=10.0)
        self._pids.clear()

    def log_file(self, name: str) -> Path:
        return self.run_dir / name / f"{name}.log"

    def _spawn(self, name: str, main_class: str, *args: str) -> None:
        home = self.run_dir / name
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_DAEMON_MEMORY": _DAEMON_HEAP,
            # Executors' Python workers run the processor's code: this virtualenv's interpreter.
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOG_DIR": str(home),
        }
        argv = [str(spark_home() / "bin" / "spark-class"), main_class, *args]
        self._pids[name] = processes.spawn(argv, self.log_file(name), home / "pid",
                                           self.tie_to_parent, env=env)  # fmt: skip

    def _wait(self, what: str, ready) -> None:
        def running() -> None:
            for name, pid in self._pids.items():
                if not processes.alive(pid):
                    raise RuntimeError(f"{name} exited:\n{processes.log_tail(self.log_file(name))}")

        wait_until(ready, self.start_timeout_s, what, every_s=0.5, check=running)
