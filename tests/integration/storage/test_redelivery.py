"""A writer killed between writing and committing, then restarted: still exactly N rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from common.contract import now_ms
from tests.integration.storage.conftest import (
    all_committed,
    committed_offsets,
    produce,
    tick_keys,
    wait_until,
)
from tests.integration.storage.test_storage_flow import make_ticks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def start(argv, env, log_path):
    log = open(log_path, "wb")  # closed by the test once the process ends
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env={**os.environ, **env},
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    return proc, log


def test_sigkill_after_write_before_commit_then_restart_keeps_exactly_n_rows(
    storage_settings, storage_env, kafka_admin, cassandra_session, tmp_path
):
    s = storage_settings
    n = 1500
    ticks = make_ticks(n, ["AAPL", "MSFT", "NVDA"], now_ms() - 300_000)
    produce(s.bootstrap_servers, s.ticks_topic, [t.to_json() for t in ticks])

    marker = tmp_path / "written-not-committed.json"
    crashing, log1 = start(["-m", "tests.integration.storage.crash_before_commit", str(marker)],
                           storage_env, tmp_path / "crash.log")  # fmt: skip
    try:
        wait_until(lambda: marker.exists() or crashing.poll() is not None, 90,
                   "the first batch to be written")  # fmt: skip
        assert crashing.poll() is None, (tmp_path / "crash.log").read_text()
        written_first = len(tick_keys(cassandra_session, s.keyspace))
        assert written_first > 0
    finally:
        crashing.send_signal(signal.SIGKILL)
        crashing.wait(timeout=30)
        log1.close()
    assert crashing.returncode == -signal.SIGKILL
    assert committed_offsets(kafka_admin, s.consumer_group) == {}

    restarted, log2 = start(["-m", "storage", "run"], storage_env, tmp_path / "run.log")
    try:
        wait_until(lambda: all_committed(kafka_admin, s) or restarted.poll() is not None, 90,
                   "the restarted writer to commit everything")  # fmt: skip
        assert restarted.poll() is None, (tmp_path / "run.log").read_text()
    finally:
        restarted.send_signal(signal.SIGTERM)
        code = restarted.wait(timeout=60)
        log2.close()
    output = (tmp_path / "run.log").read_text()
    assert code == 0, output
    assert "stopped batches=" in output

    keys = tick_keys(cassandra_session, s.keyspace)
    assert len(keys) == n
    assert set(keys) == {(t.symbol, t.ts, t.seq) for t in ticks}
    assert sum(committed_offsets(kafka_admin, s.consumer_group).values()) == n
