"""The producer's stop is bounded whatever it waits on: the last-word deadline, and a second
signal. (The flush's own bound, on real brokers that cannot take the records, is shown by
tests/integration/cluster/test_kafka_faults.py.)"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from common.polling import wait_until

ROOT = Path(__file__).resolve().parents[3]


def test_a_stop_that_hangs_past_its_deadline_dumps_every_stack_and_exits_1():
    script = textwrap.dedent(
        """
        import threading
        from producer.__main__ import stop_deadline

        def a_step_without_a_bound():
            threading.Event().wait()

        stop_deadline(1.0)
        a_step_without_a_bound()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    # Where it hung, for whoever reads the log.
    assert "a_step_without_a_bound" in result.stderr, result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_second_sigterm_ends_the_producer_at_once_whatever_it_waits_on(tmp_path):
    # No broker at this address: the producer waits on Kafka to set up its topics.
    env = {"PATH": "/usr/bin", "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_free_port()}",
           "LOG_LEVEL": "INFO", "BACKFILL_RANGE": "0"}  # fmt: skip
    log = tmp_path / "producer.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "--symbols", "AAPL"], cwd=ROOT, env=env,
            stderr=out, text=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "starting source=" in log.read_text(), 60, "the producer starting")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping, then flushing" in log.read_text(), 60, "the first signal")
        assert proc.poll() is None, log.read_text()  # still waiting on Kafka
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 1, text
    assert "again: exiting now" in text, text
