"""The pipeline's stages as child processes: started, watched, stopped in data-flow order.

One supervisor serves `make local`, the pipeline benchmark and the end-to-end tests. Each stage
runs in a process group of its own, so that killing it takes its children (Spark's JVM and
Python workers) with it, as a crash of the stage would; a clean stop signals the stage's leader
only, so that it can stop its children itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from common.polling import wait_until
from stack import processes

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child before exec: if this process dies, the kernel stops the stage too.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class StageExited(RuntimeError):
    """A stage that should be running has exited; the text ends with its log's last lines."""


class Supervisor:
    def __init__(
        self,
        logs_dir: Path,
        env: Mapping[str, str],
        *,
        cwd: Path | None = None,
        grace_s: Mapping[str, float] | None = None,
        tie_to_parent: bool = True,
    ):
        self.logs_dir = logs_dir
        self.env = dict(env)
        self.cwd = cwd
        self._grace_s = dict(grace_s or {})
        self._tie_to_parent = tie_to_parent
        self.procs: dict[str, subprocess.Popen] = {}
        # Stages that may exit without that being a failure: stopped on purpose, or done.
        self.may_exit: set[str] = set()

    def log(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def log_text(self, name: str) -> str:
        path = self.log(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, name: str, lines: int = 40) -> str:
        return processes.log_tail(self.log(name), lines)

    def start(
        self,
        name: str,
        argv: list[str] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        may_exit: bool = False,
        log_name: str | None = None,
    ) -> int:
        """Start `python -m <name>` (or argv) with the supervisor's environment plus `env`, and
        READY_FILE set to ready_file(name) (a stage creates it once running: see wait_ready)."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file(name).unlink(missing_ok=True)
        env = {"READY_FILE": str(self.ready_file(name)), **(env or {})}
        with self.log(log_name or name).open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - argv is built by our own callers
                argv or [sys.executable, "-m", name],
                cwd=self.cwd,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if self._tie_to_parent else None,  # noqa: PLW1509
            )
        self.procs[name] = proc
        if may_exit:
            self.may_exit.add(name)
        else:
            self.may_exit.discard(name)
        logger.info("started %s pid=%d log=%s", name, proc.pid, self.log(log_name or name))
        return proc.pid

    def ready_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.ready"

    def wait_ready(self, name: str, timeout_s: float) -> None:
        """Wait until the stage has created its ready file (common.ready); fail at once if a
        stage exits meanwhile, with the logs' last lines."""
        wait_until(
            self.ready_file(name).exists,
            timeout_s,
            f"{name} to be ready ({self.log(name)})",
            every_s=0.25,
            check=self.check,
            describe=self.tails,
        )

    def alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].poll() is None

    def exit_code(self, name: str) -> int | None:
        return self.procs[name].poll()

    def check(self) -> None:
        """Raise StageExited if a stage that should run has exited."""
        for name, proc in self.procs.items():
            if name not in self.may_exit and proc.poll() is not None:
                raise StageExited(
                    f"{name} exited with {proc.returncode}; its log ends:\n{self.tail(name)}"
                )

    def tails(self, lines: int = 15) -> str:
        return "\n".join(f"--- {name}:\n{self.tail(name, lines)}" for name in self.procs)

    def kill(self, name: str) -> None:
        """SIGKILL the stage's whole process group, as a crash would."""
        self.may_exit.add(name)
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def stop(self, name: str, grace_s: float | None = None) -> bool:
        """SIGTERM the stage, SIGKILL its group after the grace period. True if it was killed."""
        self.may_exit.add(name)
        proc = self.procs[name]
        if proc.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s if grace_s is not None else self._grace_s.get(name, 30.0))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in time; killing it", name)
            self.kill(name)
            return True
        return False

    def stop_all(self) -> dict[str, int | None]:
        """Stop every stage, the last started first (the producer flushes, then the readers
        finish their batch in flight); their exit codes."""
        for name in reversed(list(self.procs)):
            if self.alive(name):
                logger.info("stopping %s", name)
                self.stop(name)
        return {name: proc.returncode for name, proc in self.procs.items()}
