"""Reading back: the README's cqlsh queries through the real cqlsh, the query CLI, and the
init-schema command."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from common.contract import Aggregate, Bar, Tick, now_ms
from common.cql import connect
from storage import schema
from storage.settings import replication
from storage.writer import CassandraWriter

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
LITERAL_HOUR = int(datetime(2025, 8, 27, 13, 30, tzinfo=timezone.utc).timestamp() * 1000)
DAY_MS = 86_400_000
# Daily bars on literal dates, as the README's query of a year's bucket names one.
DAY_2026_03_02 = int(datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp() * 1000)
DAY_2025_12_31 = int(datetime(2025, 12, 31, tzinfo=timezone.utc).timestamp() * 1000)


def cqlsh_section() -> str:
    text = README.read_text()
    start = text.index("## Query with cqlsh\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def readme_queries() -> list[str]:
    return [" ".join(b.split()) for b in re.findall(r"```sql\n(.*?)```", cqlsh_section(), re.S)]


def run_cqlsh(services, cql: str) -> list[dict[str, str]]:
    cqlsh = shutil.which("cqlsh", path=os.path.dirname(sys.executable)) or shutil.which("cqlsh")
    assert cqlsh, "the cqlsh client from PyPI must be installed (requirements-dev.txt)"
    result = subprocess.run(
        [cqlsh, services.cassandra_hosts[0], str(services.cassandra_port), "-e", cql],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{cql}\n{result.stderr}"
    lines = [line for line in result.stdout.splitlines() if "|" in line or "-+-" in line]
    assert len(lines) >= 2, f"no table in the output of {cql}:\n{result.stdout}"
    header = [h.strip() for h in lines[0].split("|")]
    rows = [dict(zip(header, (v.strip() for v in line.split("|")), strict=True))
            for line in lines[2:]]  # fmt: skip
    match = re.search(r"\((\d+) rows\)", result.stdout)
    assert match and int(match.group(1)) == len(rows), result.stdout
    return rows


@pytest.fixture
def stored(services, make_keyspace):
    """A keyspace with ticks, bars and latest prices written by the storage writer."""
    ks = make_keyspace()
    cluster, session = connect(services.cassandra_hosts, services.cassandra_port)
    schema.apply(session, ks, replication("SimpleStrategy:1"))
    now = now_ms()
    today = [Tick("AAPL", round(200 + i * 0.25, 2), 10 + i, now - 15 * i, "test", i % 2)
             for i in range(15)]  # fmt: skip
    others = [Tick("MSFT", 415.5, 3, now - 100, "test"), Tick("GOOG", 170.25, 4, now - 50, "test"),
              Tick("AAPL", 150.0, 1, now - 86_400_000 - 5_000, "test")]  # fmt: skip
    hour = [Tick("AAPL", 190.0 + i, 1, LITERAL_HOUR + i * 600_000, "test") for i in range(7)]
    minute = now // 60_000 * 60_000
    bars = [Aggregate("AAPL", 60_000, minute - k * 60_000, minute - (k - 1) * 60_000,
                      100.0 + k, 102.0 + k, 99.0 + k, 101.0 + k, 100.5, 100.6, 10 * k, k)
            for k in range(1, 6)]  # fmt: skip
    old_bar = Aggregate("AAPL", 60_000, minute - 120 * 60_000, minute - 119 * 60_000,
                        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, 1)  # fmt: skip
    five_minute = Aggregate("AAPL", 300_000, minute - 300_000, minute, 5.0, 5.0, 5.0, 5.0,
                            5.0, 5.0, 5, 5)  # fmt: skip
    yesterday = (now // DAY_MS - 1) * DAY_MS + 10 * 3_600_000
    minutes = [Bar("AAPL", "1m", yesterday + k * 60_000, 50.0 + k, 51.0 + k, 49.0 + k, 50.5 + k,
                   100 * k, "yahoo") for k in range(3)]  # fmt: skip
    days = [Bar("AAPL", "1d", day, 60.0, 61.0, 59.0, 60.5, 7, "stooq")
            for day in (DAY_2026_03_02, DAY_2026_03_02 + DAY_MS, DAY_2025_12_31)]  # fmt: skip
    CassandraWriter(session, ks).prepare().write(
        today + others + hour, [*bars, old_bar, five_minute], minutes + days
    )
    yield {"ks": ks, "today": today, "hour": hour, "bars": bars, "now": now,
           "latest": {"AAPL": today[0], "MSFT": others[0], "GOOG": others[1]},
           "minutes": minutes, "days": days}  # fmt: skip
    cluster.shutdown()


def test_every_cqlsh_query_in_the_readme_returns_the_expected_rows(services, stored):
    queries = readme_queries()
    assert len(queries) == 6, queries
    seen = set()
    for query in queries:
        assert "stocks." in query
        rows = run_cqlsh(services, query.replace("stocks.", f"{stored['ks']}."))
        if "FROM stocks.ticks" in query and "currentDate()" in query:
            seen.add("last ticks today")
            newest = sorted(stored["today"], key=lambda t: (t.ts, t.seq), reverse=True)[:10]
            assert [float(r["price"]) for r in rows] == [t.price for t in newest]
            assert [int(r["seq"]) for r in rows] == [t.seq for t in newest]
        elif "FROM stocks.ticks" in query:
            seen.add("literal hour")
            # 13:30 to 14:30 on 2025-08-27: the ticks at +0, +10 ... +50 minutes, not +60.
            assert sorted(float(r["price"]) for r in rows) == [t.price for t in stored["hour"][:6]]
        elif "FROM stocks.aggregates" in query:
            seen.add("bars of the last hour")
            got = sorted((int(r["count"]), float(r["close"])) for r in rows)
            assert got == [(b.count, b.close) for b in stored["bars"]]
        elif "FROM stocks.latest_prices" in query:
            seen.add("latest prices")
            got = {r["symbol"]: float(r["price"]) for r in rows}
            assert got == {s: t.price for s, t in stored["latest"].items()}
        elif "FROM stocks.bars" in query and "'1m'" in query:
            seen.add("yesterday's minutes")
            got = [(float(r["close"]), int(r["volume"]), r["source"]) for r in rows]
            newest_first = sorted(stored["minutes"], key=lambda b: b.start, reverse=True)
            assert got == [(b.close, b.volume, b.source) for b in newest_first]
        elif "FROM stocks.bars" in query:
            seen.add("daily bars of a year")
            # The year's bucket: 2026's two days, not 2025-12-31.
            assert [r["start"][:10] for r in rows] == ["2026-03-03", "2026-03-02"]
    assert len(seen) == 6


def storage_cli(services, ks: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CASSANDRA_HOSTS": ",".join(services.cassandra_hosts),
           "CASSANDRA_PORT": str(services.cassandra_port), "CASSANDRA_KEYSPACE": ks}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "storage", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_query_cli_prints_ticks_bars_and_latest_prices(services, stored):
    ks = stored["ks"]
    ticks = storage_cli(services, ks, "query", "AAPL", "--last", "1h", "--json")
    assert ticks.returncode == 0, ticks.stderr
    newest_first = sorted(stored["today"], key=lambda t: (t.ts, t.seq), reverse=True)
    assert [(r["ts"], r["seq"], r["price"]) for r in json.loads(ticks.stdout)] == [
        (t.ts, t.seq, t.price) for t in newest_first
    ]

    start = datetime.fromtimestamp(LITERAL_HOUR / 1000, timezone.utc).isoformat()
    hour = storage_cli(services, ks, "query", "aapl", "--from", start, "--to", "2025-08-27T14:30Z",
                       "--limit", "3", "--json")  # fmt: skip
    assert hour.returncode == 0, hour.stderr
    assert [r["price"] for r in json.loads(hour.stdout)] == [195.0, 194.0, 193.0]

    bars = storage_cli(services, ks, "query", "AAPL", "--window", "1m", "--last", "1h")
    assert bars.returncode == 0, bars.stderr
    assert bars.stdout.splitlines()[0].split()[:3] == ["window_start", "open", "high"]
    assert "(5 rows)" in bars.stdout

    history = storage_cli(services, ks, "query", "AAPL", "--bars", "1m", "--last", "2d", "--json")
    assert history.returncode == 0, history.stderr
    assert [r["start"] for r in json.loads(history.stdout)] == [
        b.start for b in sorted(stored["minutes"], key=lambda b: b.start, reverse=True)
    ]
    daily = storage_cli(services, ks, "query", "AAPL", "--bars", "1d", "--from", "2025-12-01",
                        "--to", "2026-03-03T12:00Z")  # fmt: skip
    assert daily.returncode == 0, daily.stderr
    assert daily.stdout.splitlines()[0].split()[:3] == ["start", "open", "high"]
    assert "(3 rows)" in daily.stdout

    latest = storage_cli(services, ks, "query", "latest")
    assert latest.returncode == 0, latest.stderr
    lines = latest.stdout.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["AAPL", "GOOG", "MSFT"]
    assert "415.5" in lines[4]

    bad = storage_cli(services, ks, "query", "NOT A SYMBOL")
    assert bad.returncode == 2
    assert "not valid" in bad.stderr
    backwards = storage_cli(services, ks, "query", "AAPL", "--from", "2025-08-27T15:00Z",
                            "--to", "2025-08-27T14:00Z")  # fmt: skip
    assert backwards.returncode == 2
    assert "range is empty" in backwards.stderr


def test_init_schema_creates_the_keyspace_and_tables_and_is_idempotent(
    services, make_keyspace, cassandra_session
):
    ks = make_keyspace()
    cassandra_session.execute(f"DROP KEYSPACE {ks}")  # init-schema must create it itself
    for _ in range(2):
        result = storage_cli(services, ks, "init-schema")
        assert result.returncode == 0, result.stderr
    tables = {r.table_name for r in cassandra_session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (ks,))}  # fmt: skip
    assert tables == {"ticks", "aggregates", "latest_prices", "bars"}
    row = cassandra_session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (ks,)
    ).one()
    assert row.replication["replication_factor"] == "1"
    compaction = cassandra_session.execute(
        "SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s "
        "AND table_name = 'ticks'",
        (ks,),
    ).one()
    assert compaction.compaction["class"].endswith("TimeWindowCompactionStrategy")
