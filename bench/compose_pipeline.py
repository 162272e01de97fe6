"""The pipeline as `make up` runs it, for bench.idle: containers of a compose project of its own,
their CPU read from the engine (the docker package), the simulated producer's rate changed by
recreating its container."""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from pathlib import Path
from types import TracebackType

from stack.settings import free_port

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
# Building the images on a machine without them takes minutes; a warm `up` well under one.
_UP_TIMEOUT_S = 1800
# Services that run until stopped; the one-shot init jobs exit by design.
_ONE_SHOT = {"init-topics", "init-schema"}


class ComposeError(RuntimeError):
    """A compose command failed, or a service stopped while it was measured."""


def compose_files(spark: str) -> list[str]:
    """`-f FILE` arguments of `make up SPARK=spark`, asked of the Makefile, their one home."""
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", "compose-files", f"SPARK={spark}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if out.returncode != 0:
        raise ComposeError(f"make compose-files SPARK={spark}: {out.stderr.strip()}")
    args = out.stdout.split()
    return [str(ROOT / a) if a != "-f" else a for a in args]


class ComposePipeline:
    """`with ComposePipeline(...) as p:` builds and starts the stack, and removes it (volumes
    included) at the end, whatever happened."""

    def __init__(self, symbols: list[str], windows: str, spark: str):
        self.project = f"stock-system-bench-{uuid.uuid4().hex[:8]}"
        self._files = compose_files(spark)
        self._env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            # Ports of its own: a user's `make up` may hold the default ones.
            "KAFKA_HOST_PORT": str(free_port()),
            "CASSANDRA_HOST_PORT": str(free_port()),
            "DASHBOARD_HOST_PORT": str(free_port()),
            "SPARK_UI_HOST_PORT": str(free_port()),
            "SYMBOLS": ",".join(symbols),
            "SOURCE": "simulated",
            "WINDOWS": windows,
        }
        self._client = None
        self.producing = False

    def __enter__(self) -> ComposePipeline:
        import docker

        self._client = docker.from_env()
        logger.info("compose project %s: building and starting (make up)", self.project)
        try:
            # No producer yet: each offered rate starts its own (offer).
            self._compose("up", "-d", "--build", "--wait", "--scale", "producer=0",
                          timeout=_UP_TIMEOUT_S)  # fmt: skip
        except BaseException:
            self._down()
            raise
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, tb: TracebackType | None):
        self._down()

    def offer(self, rate: int) -> None:
        """The simulated producer publishing `rate` ticks/s over all symbols (0: none)."""
        if self.producing:
            self._compose("rm", "-s", "-f", "producer")
            self.producing = False
        if rate:
            self._env["SIM_RATE"] = str(rate)
            self._compose("up", "-d", "--no-deps", "--scale", "producer=1", "producer")
            self.producing = True

    def cpu_seconds(self) -> dict[str, float]:
        """CPU each running service's container has used since it started (its cgroup)."""
        found = {}
        for container in self._containers():
            service = container.labels["com.docker.compose.service"]
            if service in _ONE_SHOT or container.status != "running":
                continue
            stats = container.stats(stream=False, one_shot=True)
            found[service] = stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
        return found

    def check(self) -> None:
        """Raise if a long-running service has stopped: the figures would mean nothing."""
        for container in self._containers():
            service = container.labels["com.docker.compose.service"]
            if service not in _ONE_SHOT and container.status != "running":
                state = container.status
                raise ComposeError(f"{service} is {state} (see: docker logs {container.name})")

    def _containers(self) -> list:
        label = f"com.docker.compose.project={self.project}"
        return self._client.containers.list(all=True, filters={"label": label})

    def _compose(self, *args: str, timeout: float = 300, check: bool = True) -> None:
        result = subprocess.run(
            ["docker", "compose", *self._files, *args],
            cwd=ROOT, env=self._env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise ComposeError(f"docker compose {' '.join(args)} failed:\n{tail}")

    def _down(self) -> None:
        logger.info("compose project %s: removing containers and volumes", self.project)
        # Best effort: it runs on the way out, often after another error worth reporting.
        self._compose("down", "-v", "--remove-orphans", check=False)
