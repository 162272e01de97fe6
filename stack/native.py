"""The native stack: ZooKeeper, Kafka (ZooKeeper mode) and Cassandra as JVMs on loopback.

One node of each, or a cluster (StackSettings.nodes): node n of every service on 127.0.0.n. The
processes are named by instance (services.instance_name): `kafka`, or `kafka-1`..`kafka-3`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from common.polling import WaitTimeout, wait_until
from stack import artifacts, processes, readiness, services
from stack.services import (
    CASSANDRA,
    KAFKA,
    SERVICES,
    ZOOKEEPER,
    LaunchSpec,
    instance_name,
    parse_instance,
)
from stack.settings import StackSettings

logger = logging.getLogger(__name__)

BUILDERS: dict[str, tuple[artifacts.Bundle, Callable[..., LaunchSpec]]] = {
    ZOOKEEPER: (artifacts.KAFKA, services.zookeeper),
    KAFKA: (artifacts.KAFKA, services.kafka),
    CASSANDRA: (artifacts.CASSANDRA, services.cassandra),
}
# How each service is told ready (stack.serve probes the compose nodes with the same).
PROBES: dict[str, Callable[[StackSettings], bool]] = {
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

    def instances(self, names: Iterable[str] = SERVICES) -> list[str]:
        """The instances `names` mean, in dependency order: a service name means all its nodes,
        an instance name (kafka-2) that one."""
        wanted = set(names)
        found = []
        for service in SERVICES:
            for node in self.settings.node_ids:
                instance = instance_name(self.settings.for_node(node), service)
                if service in wanted or instance in wanted:
                    found.append(instance)
        unknown = wanted - set(found) - set(SERVICES)
        if unknown:
            raise StackError(
                f"{', '.join(sorted(unknown))}: not an instance of this stack of "
                f"{self.settings.nodes} node(s) ({', '.join(self.instances())})"
            )
        return found

    def node_settings(self, instance: str) -> StackSettings:
        return self.settings.for_node(parse_instance(instance)[1])

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
        instances = self.instances(names)
        self.check_prerequisites()
        self.resolve()
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        self._save_state()
        # Cassandra is the slowest to boot and needs neither of the others: start it first so
        # it warms up while ZooKeeper and Kafka come up. The nodes of one service start
        # together: an ensemble's server waits for a quorum, and a broker is ready only once
        # registered, which any order allows.
        cassandra = [i for i in instances if parse_instance(i)[0] == CASSANDRA]
        try:
            for instance in cassandra:
                self.start(instance, wait=False)
            for service in (ZOOKEEPER, KAFKA):
                group = [i for i in instances if parse_instance(i)[0] == service]
                for instance in group:
                    self.start(instance, wait=False)
                for instance in group:
                    self.wait_ready(instance)
            for instance in cassandra:
                self.wait_ready(instance)
        except BaseException:
            self.down(instances)
            raise
        took = time.monotonic() - started
        logger.info("stack up in %.1fs: %s", took, ", ".join(instances))
        return took

    def start(self, name: str, wait: bool = True) -> None:
        """Start one instance (a service's only node, or kafka-2), and wait until it answers."""
        if processes.alive(self.pid(name)):
            if wait:
                self.wait_ready(name)
            return
        spec = self._launch_spec(name)
        host = self.node_settings(name).node_host()
        if readiness.port_open(host, spec.port):
            raise StackError(
                f"port {spec.port} on {host} is taken by another process, so "
                f"{name} cannot start: stop that process (see `ss -ltnp | grep {spec.port}`) "
                f"or pick another port (python -m stack up --help)"
            )
        if parse_instance(name)[0] == KAFKA and not self._zookeeper_serving():
            raise StackError("Kafka needs ZooKeeper: start zookeeper first")
        logger.info("starting %s on port %d (log: %s)", name, spec.port, spec.log_file)
        processes.spawn(spec.argv, spec.log_file, self._pid_file(name), self.tie_to_parent)
        if wait:
            self.wait_ready(name)

    def _zookeeper_serving(self, within_s: float = 20.0) -> bool:
        """Whether a ZooKeeper server answers, asked again for up to `within_s`: one probe of a
        server just started can time out on a busy machine (it did, right after it was ready)."""

        def answers() -> bool:
            nodes = self.settings.node_ids
            return any(readiness.zookeeper_ready(self.settings.for_node(n)) for n in nodes)

        try:
            return wait_until(answers, within_s, "ZooKeeper to answer", every_s=0.5)
        except WaitTimeout:
            return False

    def _launch_spec(self, name: str) -> LaunchSpec:
        service, node = parse_instance(name)
        bundle, build = BUILDERS[service]
        jars = artifacts.resolve(self.settings.cache_dir, bundle, self.settings.mvn)
        return build(self.settings.for_node(node), jars)

    def ready(self, name: str) -> bool:
        """Whether one instance answers its own protocol (as part of the cluster, in one)."""
        service, node = parse_instance(name)
        return PROBES[service](self.settings.for_node(node))

    def wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        delay = 0.2
        while True:
            if self.ready(name):
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
        """Stop one instance gracefully (SIGTERM, then SIGKILL after its grace period)."""
        pid = self.pid(name)
        grace = _GRACE_S[parse_instance(name)[0]]
        if pid is not None and processes.terminate(pid, grace):
            logger.warning("%s did not stop within %.0fs and was killed", name, grace)
        self._pid_file(name).unlink(missing_ok=True)

    def kill(self, name: str) -> None:
        """SIGKILL one instance, as a crash would."""
        pid = self.pid(name)
        if pid is not None:
            processes.kill(pid)
        self._pid_file(name).unlink(missing_ok=True)

    def down(self, names: Iterable[str] = SERVICES) -> None:
        # Reverse dependency order: Kafka before the ZooKeeper it is registered in.
        for name in reversed(self.instances(names)):
            self.stop(name)

    def status(self) -> dict[str, dict[str, object]]:
        result: dict[str, dict[str, object]] = {}
        for name in self.instances():
            service, node = parse_instance(name)
            pid = self.pid(name)
            running = processes.alive(pid)
            result[name] = {
                "pid": pid if running else None,
                "running": running,
                "ready": running and self.ready(name),
                "address": self.settings.node_host(node),
                "port": getattr(self.settings, f"{service}_port"),
                "log": str(self.log_file(name)),
            }
        return result

    def env(self) -> dict[str, str]:
        """Environment variables that point the pipeline, cqlsh and the tests at this stack."""
        settings = self.settings
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "ZOOKEEPER_CONNECT": settings.zookeeper_connect,
            "CASSANDRA_HOSTS": ",".join(settings.cassandra_hosts),
            "CASSANDRA_PORT": str(settings.cassandra_port),
        }
        if settings.nodes > 1:
            # The keyspace on every node (at most 3), in the one data centre SimpleSnitch names.
            env["CASSANDRA_REPLICATION"] = (
                f"NetworkTopologyStrategy:datacenter1={min(settings.nodes, 3)}"
            )
        return env
