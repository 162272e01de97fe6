"""A compose project of a test's own, driven through `make` and `docker compose` as a user
would: what the compose tests share."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.polling import WaitTimeout, wait_until

ROOT = Path(__file__).resolve().parents[3]
# A warm `make up` takes about a minute; a cold one builds the images first.
UP_TIMEOUT_S = 1200


def engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI (run scripts/docker-engine.sh as root to install and start one)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return f"no Docker engine answers: {info.stderr.strip().splitlines()[-1:]}"
    compose = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if compose.returncode != 0:
        return "the docker compose v2 plugin is missing (scripts/docker-engine.sh builds it)"
    return None


@dataclass
class Stack:
    env: dict[str, str]
    kafka: str
    cassandra_port: int
    spark_ui: str

    def make(self, *target: str, timeout: float = UP_TIMEOUT_S) -> str:
        return self._run(["make", "-C", str(ROOT), *target], timeout)

    def compose(self, *args: str, timeout: float = 300) -> str:
        return self._run(["docker", "compose", *args], timeout)

    def _run(self, argv: list[str], timeout: float) -> str:
        """Its stdout; a failure fails the test with the command's last lines."""
        result = subprocess.run(
            argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{' '.join(argv)} failed:\n{tail(result)}"
        return result.stdout

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).strip()

    def cassandra(self, timeout_s: float = 180) -> Any:
        """A driver's cluster and session on the project's Cassandra (the stages' own settings,
        common.cql), asked for until a deadline: on a loaded two-core host a first connection can
        outlast one try's timeout (a CI run failed on one such try, with every container
        healthy)."""
        from common.cql import build_cluster

        def connected() -> Any:
            cluster = build_cluster(["127.0.0.1"], self.cassandra_port)
            try:
                return cluster, cluster.connect()
            except Exception:
                cluster.shutdown()
                raise

        return poll_for("a driver session on Cassandra", connected, timeout_s)


def tail(result: subprocess.CompletedProcess) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-40:])


def poll_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 2.0) -> Any:
    """check() until it returns something truthy; fails with its last answer at the deadline."""
    last: list[Any] = [None]

    def answered() -> Any:
        try:
            last[0] = check()
        except Exception as e:  # noqa: BLE001 - not there yet; the last error is reported
            last[0] = e
            return None
        return last[0]

    try:
        return wait_until(answered, timeout_s, what, every_s=every_s)
    except WaitTimeout:
        pytest.fail(f"{what}: not within {timeout_s:.0f}s; last: {last[0]!r}")


def require_engine() -> None:
    """Skip, saying why, where no Docker engine answers; fail instead under .ci/run, which sets
    STOCK_SYSTEM_REQUIRE_DOCKER=1 after starting one (there the compose tests never skip)."""
    import os

    problem = engine_problem()
    if problem:
        if os.environ.get("STOCK_SYSTEM_REQUIRE_DOCKER"):
            pytest.fail(f"the compose test must run here, but {problem}")
        pytest.skip(problem)
