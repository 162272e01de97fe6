"""The native stack: ZooKeeper, Kafka (ZooKeeper mode) and Cassandra as JVMs on loopback."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from stack import artifacts, processes, readiness, services
from stack.services import CASSANDRA, KAFKA, SERVICES, ZOOKEEPER, LaunchSpec
from stack.settings import StackSettings

logger = logging.getLogger(__name__)

_BUILDERS: dict[str, tuple[artifacts.Bundle, Callable[..., LaunchSpec]]] = {
    ZOOKEEPER: (artifacts.KAFKA, services.zookeeper),
    KAFKA: (artifacts.KAFKA, services.kafka),
    CASSANDRA: (artifacts.CASSANDRA, services.cassandra),
}
_PROBES: dict[str, Callable[[StackSettings], bool]] = {
    ZOOKEEPER: readiness.zookeeper_ready,
    KAFKA: readiness.kafka_ready,
    CASSANDRA: readiness.cassandra_ready,
}
# Seconds a service gets to shut down on SIGTERM before it is killed.
_GRACE_S = {ZOOKEEPER: 10.0, KAFKA: 20.0, CASSANDRA: 30.0}
STATE_FILE = "stack.json"


class StackError(RuntimeError):
    """The stack could not do what was asked; the message says what to do."""


class NativeStack:
    def __init__(self, settings: StackSettings, tie_to_parent: bool = False):
        self.settings = settings
        self.tie_to_parent = tie_to_parent

    # --- state on disk -------------------------------------------------------------------

    @classmethod
    def from_run_dir(cls, run_dir: Path, **overrides: object) -> NativeStack:
        """The stack that `up` recorded in run_dir, so status/down use its ports."""
        settings = StackSettings(run_dir=run_dir)
        state = run_dir / STATE_FILE
        if state.exists():
            saved = json.loads(state.read_text())
            fields = {f.name for f in dataclasses.fields(StackSettings)}
            known = {k: v for k, v in saved.items() if k in fields}
            known["run_dir"] = Path(known.get("run_dir", run_dir))
            known["cache_dir"] = Path(known.get("cache_dir", settings.cache_dir))
            settings = StackSettings(**known)
        if overrides:
            settings = dataclasses.replace(settings, **overrides)
        return cls(settings)

    def _save_state(self) -> None:
        data = dataclasses.asdict(self.settings)
        data = {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
        (self.settings.run_dir / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n")

    def _pid_file(self, name: str) -> Path:
        return services.service_dir(self.settings, name) / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        return processes.read_pid(self._pid_file(name))

    def log_file(self, name: str) -> Path:
        return services.service_dir(self.settings, name) / f"{name}.log"

    # --- lifecycle -----------------------------------------------------------------------

    def check_prerequisites(self) -> None:
        if shutil.which(self.settings.java) is None:
            raise StackError(
                f"'{self.settings.java}' was not found: install a Java 17 runtime "
                "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA to its path"
            )

    def resolve(self) -> None:
        try:
            for bundle in (artifacts.KAFKA, artifacts.CASSANDRA):
                artifacts.resolve(self.settings.cache_dir, bundle, self.settings.mvn)
        except artifacts.ResolveError as e:
            raise StackError(str(e)) from e

    def up(self, names: Iterable[str] = SERVICES) -> float:
        """Start the named services (all by default) and wait until each answers. Seconds taken."""
        started = time.monotonic()
        names = [n for n in SERVICES if n in set(names)]
        self.check_prerequisites()
        self.resolve()
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        self._save_state()
        # Cassandra is the slowest to boot and needs neither of the others: start it first so
        # it warms up while ZooKeeper and Kafka come up.
        order = sorted(names, key=lambda n: n != CASSANDRA)
        try:
            for name in order:
                self.start(name, wait=name != CASSANDRA)
            if CASSANDRA in names:
                self.wait_ready(CASSANDRA)
        except BaseException:
            self.down(names)
            raise
        took = time.monotonic() - started
        logger.info("stack up in %.1fs: %s", took, ", ".join(names))
        return took

    def start(self, name: str, wait: bool = True) -> None:
        if processes.alive(self.pid(name)):
            if wait:
                self.wait_ready(name)
            return
        spec = self._launch_spec(name)
        if readiness.port_open(self.settings.host, spec.port):
            raise StackError(
                f"port {spec.port} on {self.settings.host} is taken by another process, so "
                f"{name} cannot start: stop that process (see `ss -ltnp | grep {spec.port}`) "
                f"or pick another port (python -m stack up --help)"
            )
        if name == KAFKA and not readiness.zookeeper_ready(self.settings):
            raise StackError("Kafka needs ZooKeeper: start zookeeper first")
        logger.info("starting %s on port %d (log: %s)", name, spec.port, spec.log_file)
        processes.spawn(spec.argv, spec.log_file, self._pid_file(name), self.tie_to_parent)
        if wait:
            self.wait_ready(name)

    def _launch_spec(self, name: str) -> LaunchSpec:
        bundle, build = _BUILDERS[name]
        jars = artifacts.resolve(self.settings.cache_dir, bundle, self.settings.mvn)
        return build(self.settings, jars)

    def wait_ready(self, name: str) -> None:
        probe = _PROBES[name]
        deadline = time.monotonic() + self.settings.start_timeout_s
        delay = 0.2
        while True:
            if probe(self.settings):
                logger.info("%s is ready", name)
                return
            if not processes.alive(self.pid(name)):
                raise StackError(
                    f"{name} exited during start-up. Last lines of {self.log_file(name)}:\n"
                    + processes.log_tail(self.log_file(name))
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{name} was not ready within {self.settings.start_timeout_s:.0f}s. "
                    f"Last lines of {self.log_file(name)}:\n"
                    + processes.log_tail(self.log_file(name))
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def stop(self, name: str) -> None:
        """Stop one service gracefully (SIGTERM, then SIGKILL after its grace period)."""
        pid = self.pid(name)
        if pid is not None and processes.terminate(pid, _GRACE_S[name]):
            logger.warning("%s did not stop within %.0fs and was killed", name, _GRACE_S[name])
        self._pid_file(name).unlink(missing_ok=True)

    def kill(self, name: str) -> None:
        """SIGKILL one service, as a crash would."""
        pid = self.pid(name)
        if pid is not None:
            processes.kill(pid)
        self._pid_file(name).unlink(missing_ok=True)

    def down(self, names: Iterable[str] = SERVICES) -> None:
        # Reverse dependency order: Kafka before the ZooKeeper it is registered in.
        for name in reversed([n for n in SERVICES if n in set(names)]):
            self.stop(name)

    def status(self) -> dict[str, dict[str, object]]:
        result: dict[str, dict[str, object]] = {}
        for name in SERVICES:
            pid = self.pid(name)
            running = processes.alive(pid)
            result[name] = {
                "pid": pid if running else None,
                "running": running,
                "ready": running and _PROBES[name](self.settings),
                "port": getattr(self.settings, f"{name}_port"),
                "log": str(self.log_file(name)),
            }
        return result

    def env(self) -> dict[str, str]:
        """Environment variables that point the pipeline, cqlsh and the tests at this stack."""
        settings = self.settings
        return {
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "ZOOKEEPER_CONNECT": settings.zookeeper_connect,
            "CASSANDRA_HOSTS": settings.host,
            "CASSANDRA_PORT": str(settings.cassandra_port),
        }
