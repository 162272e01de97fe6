"""The README's curl examples for the dashboard, run as written against a real dashboard on real
Kafka and Cassandra (only the address is changed to the test's free port)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from common.contract import Aggregate, Tick, now_ms
from common.polling import wait_until
from tests.integration.storage.conftest import produce, storage_running

README = Path(__file__).resolve().parents[3] / "README.md"
DOCUMENTED = "http://127.0.0.1:8050"


def readme_curl_lines() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Dashboard\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("curl ")]


def test_the_readme_has_curl_examples_for_every_endpoint():
    lines = readme_curl_lines()
    for endpoint in ("/api/latest", "/api/bars", "/api/candles", "/api/ticks", "/api/health",
                     "/api/live"):  # fmt: skip
        assert any(endpoint in line for line in lines), endpoint
    assert all(DOCUMENTED in line for line in lines)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_examples_work(services, topics, storage_settings_for, dashboard):
    now = now_ms()
    minute = now // 60_000 * 60_000
    ticks = [Tick("AAPL", 200.0 + i, 10, now - 1000 * (10 - i), "pytest", 0) for i in range(10)]
    bars = [
        Aggregate("AAPL", 60_000, minute - k * 60_000, minute - (k - 1) * 60_000,
                  200.0, 203.0, 199.0, 201.0, 201.0, 201.0, 50, 5)
        for k in (3, 2, 1)
    ]  # fmt: skip
    with storage_running(storage_settings_for):
        produce(services.bootstrap_servers, topics["ticks"], [t.to_json() for t in ticks])
        produce(services.bootstrap_servers, topics["aggregates"], [b.to_json() for b in bars])
        wait_until(
            lambda: (
                len(dashboard.get("/api/bars?symbol=AAPL&window=1m").body["bars"]) == 3
                and len(dashboard.get("/api/ticks?symbol=AAPL").body["ticks"]) == 10
            ),
            90,
            "the examples' data to be stored",
        )
        base = dashboard.url.rstrip("/")
        for line in readme_curl_lines():
            command, _, comment = line.partition("#")
            done = subprocess.run(
                ["bash", "-c", command.replace(DOCUMENTED, base)],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            if "--max-time" in command:
                # The live stream runs until curl's own time limit (exit 28) ends it.
                assert done.returncode == 28, (line, done.returncode, done.stderr)
                assert "event: hello" in done.stdout, (line, done.stdout[:300])
                continue
            assert done.returncode == 0, (line, done.stderr)
            body = json.loads(done.stdout)
            if "400" in comment:
                assert "is not one of" in body["error"], (line, body)
                continue
            assert "error" not in body, (line, body)
            if "/api/latest" in command:
                assert [p["symbol"] for p in body["prices"]] == ["AAPL"]
                assert body["prices"][0]["price"] == 209.0
            elif "/api/bars" in command and "window=1m" in command:
                assert [b["t"] for b in body["bars"]] == [b.window_start for b in bars]
            elif "/api/bars" in command:
                assert body["bars"] == []  # a range of 2025, before this test's data
            elif "/api/candles" in command:
                # No history here: the daily candles are the 1-minute aggregates rolled up
                # (one day's, or two just after midnight UTC).
                days = body["candles"]
                assert days and all(not d["history"] for d in days), days
                assert days[-1]["t"] == minute - minute % 86_400_000, days
                assert (days[0]["open"], days[-1]["close"]) == (200.0, 201.0), days
                assert sum(d["volume"] for d in days) == 150, days
            elif "/api/ticks" in command:
                assert [t["price"] for t in body["ticks"]] == [209.0, 208.0, 207.0, 206.0, 205.0]
            elif "/api/health" in command:
                assert body["cassandra"]["ok"] is True and body["kafka"]["ok"] is True
