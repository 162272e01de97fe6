"""`python -m bench.history` (make bench-history): how fast history reaches the chart, on real
Kafka, ZooKeeper and Cassandra (a private stack on free ports unless the environment names
them), with the sources' history stand-in (stack.history_stand_in) in place of Yahoo.

Measured:
- backfill: `python -m producer backfill` of --symbols symbols x 5 trading days of 1-minute bars
  (`--range 7d`; 100 symbols: about 195,000 bars over the stand-in's US sessions), from the
  stand-in to Cassandra
  (storage's committed offsets reach the end of the bars topic; every row is then counted):
  bars/s, the CPU of the backfill and of storage per 1,000 bars, and when the dashboard's
  /api/candles first charts the last symbol's 5 days;
- a symbol added to a running fleet (`--adds` times): from the change of the list to the
  dashboard charting its last 5 days (/api/candles, every history bar in);
- a gap: a producer polling the stand-in (a market open round the clock here) is stopped for
  --outage and started again: from the restart to every missing minute stored as a bar, beside
  its polling interval.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.cpu import cpu_model, cpu_seconds
from bench.results import RESULTS_DIR, publish, stamp
from common.buckets import bar_buckets
from common.contract import now_ms
from common.cql import connect as cql_connect
from common.fleet import SymbolStore
from common.fleet import connect as zk_connect
from common.logs import configure_logging
from common.polling import wait_until
from common.settings import (
    LOG_LEVEL,
    EnvArgumentParser,
    add_options,
    duration_ms,
    format_duration,
    option,
    parse_settings,
    positive_int,
)
from common.topics import ensure_topics
from stack import history_stand_in as stand_in
from stack.endpoints import services
from stack.settings import free_port
from stack.stage_env import REPO, stage_env
from stack.supervisor import Supervisor

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
MINUTE = 60_000
POLL_INTERVAL = "5s"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
        return json.loads(answer.read())


def _charted(dashboard: str, market: stand_in.HistoryStandIn, symbol: str) -> bool:
    """The dashboard's chart of the last 5 days (/api/candles, 1-minute candles) holds every
    bar the producer asked the stand-in for in those days."""
    since = now_ms() - 5 * DAY_MS
    want = {t for t in market.bars_asked(symbol) if t >= since}
    if not want:
        return False
    try:
        body = _get(f"{dashboard}/api/candles?symbol={symbol}&window=1m&from={since}")
    except OSError:
        return False
    return want <= {c["t"] for c in body["candles"] if c["history"]}


def _group_caught_up(bootstrap: str, group: str, topic: str, timeout_s: float) -> None:
    """Wait until `group` has committed the end of every partition of `topic`."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(tps)

        def caught_up() -> bool:
            done = admin.list_group_offsets(group).get(group, {})
            # A partition no bar went to has nothing to commit.
            return all((done[tp].offset if tp in done else 0) >= ends[tp] for tp in tps)

        wait_until(caught_up, timeout_s, f"{group} to commit the end of {topic}", every_s=0.1)
    finally:
        consumer.close()
        admin.close()


def _stored(session, keyspace: str, symbol: str, interval: str, start: int, end: int) -> set:
    from cassandra.util import Date

    select = session.prepare(
        f"SELECT start FROM {keyspace}.bars WHERE symbol = ? "  # noqa: S608
        "AND interval = ? AND bucket = ? AND start >= ? AND start < ?"
    )
    found = set()
    for day in bar_buckets(interval, start, end):
        for row in session.execute(select, (symbol, interval, Date(day), start, end)):
            found.add(int(row.start.replace(tzinfo=timezone.utc).timestamp() * 1000))
    return found


def _backfill(env, stages, session, keyspace, dashboard, market, symbols: list[str]) -> dict:
    began_ms = now_ms()
    storage_cpu = cpu_seconds(stages.procs["storage"].pid)
    started = time.monotonic()
    log = stages.log("backfill")
    with log.open("w") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "producer", "backfill", *symbols, "--source", "yahoo",
             "--range", "7d", "--interval", "1m", "--pause", "0"],
            env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        # wait4: the exit status and the CPU the command used, user and system.
        _, status, usage = os.wait4(proc.pid, 0)
    published = time.monotonic()
    out = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the backfill failed:\n{out[-3000:]}")
    out = next((line for line in out.splitlines() if line.startswith("backfill ")), out[-500:])
    backfill_cpu = usage.ru_utime + usage.ru_stime
    bootstrap, group = env["KAFKA_BOOTSTRAP_SERVERS"], env["CONSUMER_GROUP"]
    _group_caught_up(bootstrap, group, env["BARS_TOPIC"], 600)
    stored = time.monotonic()
    expected = {s: len(market.bars_asked(s)) for s in symbols}
    storage_cpu = cpu_seconds(stages.procs["storage"].pid) - storage_cpu
    last = symbols[-1]
    wait_until(lambda: _charted(dashboard, market, last), 120,
               f"the dashboard to chart {last}", every_s=0.1)  # fmt: skip
    charted = time.monotonic()
    counts = {s: len(_stored(session, keyspace, s, "1m", began_ms - 8 * DAY_MS, began_ms))
              for s in symbols}  # fmt: skip
    missing = {s: expected[s] - n for s, n in counts.items() if n != expected[s]}
    if missing:
        raise RuntimeError(f"bars not stored: {missing}")
    total = sum(expected.values())
    return {"bars": total, "publish_s": published - started, "stored_s": stored - started,
            "charted_s": charted - started, "backfill_cpu": backfill_cpu,
            "storage_cpu": storage_cpu, "out": out.strip()}  # fmt: skip


def _adds(env, stages, found, dashboard, market, adds: int, run_id: str) -> list[float]:
    chroot = f"/bench-history-{run_id}"
    fleet_env = {"ZOOKEEPER_HOSTS": found.zookeeper_connect, "FLEET_CHROOT": chroot,
                 "SYMBOLS": "FLEET", "BACKFILL_RANGE": "5d", "BACKFILL_PAUSE": "0",
                 "BACKFILL_DAILY_RANGE": "0", "FETCH_INTERVAL": POLL_INTERVAL}  # fmt: skip
    stages.start("fleet-producer", [sys.executable, "-m", "producer"], env=fleet_env)
    client = zk_connect(found.zookeeper_connect, chroot)
    store = SymbolStore(client)
    try:
        wait_until(lambda: store.owners().get("FLEET"), 120, "the fleet's member to start")
        took = []
        for n in range(adds):
            symbol = f"NEW{n}"
            added = time.monotonic()
            store.change(lambda current, s=symbol: (*current, s))
            wait_until(lambda s=symbol: _charted(dashboard, market, s), 120,
                       f"{symbol}'s 5 days on the chart", every_s=0.1,
                       check=stages.check)  # fmt: skip
            took.append(time.monotonic() - added)
    finally:
        stages.stop("fleet-producer")
        client.stop()
        client.close()
    return took


def _gap(env, stages, session, keyspace, outage_s: float, market_url: str) -> dict:
    gap_env = {"SYMBOLS": "GAP", "BACKFILL_RANGE": "1h", "BACKFILL_PAUSE": "0",
               "BACKFILL_DAILY_RANGE": "0", "FETCH_INTERVAL": POLL_INTERVAL,
               "YAHOO_BASE_URL": market_url}  # fmt: skip
    stages.start("gap-producer", [sys.executable, "-m", "producer"], env=gap_env)
    first = now_ms()
    wait_until(lambda: _stored(session, keyspace, "GAP", "1m", first - 3_600_000, first), 120,
               "the gap producer's first history", check=stages.check)  # fmt: skip
    stages.stop("gap-producer")
    stopped = now_ms()
    logger.info("gap producer stopped; waiting out the outage of %.0f s", outage_s)
    time.sleep(outage_s)  # the outage itself: the time the producer is away
    restarted_ms = now_ms()
    restarted = time.monotonic()
    stages.start("gap-producer", [sys.executable, "-m", "producer"], env=gap_env)
    # The minutes wholly missed, but for the stand-in's minutes without trades (no bar).
    gap = {m for m in range(stopped - stopped % MINUTE + MINUTE,
                            restarted_ms - restarted_ms % MINUTE, MINUTE)
           if (m // MINUTE) % stand_in.NO_TRADE_EVERY}  # fmt: skip

    def filled() -> bool:
        have = _stored(session, keyspace, "GAP", "1m", min(gap), max(gap) + MINUTE)
        return gap <= have

    wait_until(filled, 120, "the outage's minutes stored", every_s=0.1, check=stages.check)
    took = time.monotonic() - restarted
    stages.stop("gap-producer")
    return {"minutes": len(gap), "filled_s": took}


def run(symbols: int, adds: int, outage_s: float, work: Path) -> str:
    with services(os.environ, work / "stack") as found:
        market = stand_in.HistoryStandIn().start()
        open_market = stand_in.HistoryStandIn(always_open=True).start()
        run_id = uuid.uuid4().hex[:8]
        topic, keyspace = f"history-bench-{run_id}", f"history_bench_{run_id}"
        topics = {"t": topic, "a": f"{topic}-aggs", "d": f"{topic}-dl", "b": f"{topic}-bars"}
        ensure_topics(found.bootstrap_servers, topics.values(), partitions=3)
        port = free_port()
        env = stage_env(os.environ, KAFKA_BOOTSTRAP_SERVERS=found.bootstrap_servers,
                        TICKS_TOPIC=topics["t"], AGGREGATES_TOPIC=topics["a"],
                        DEAD_LETTER_TOPIC=topics["d"], BARS_TOPIC=topics["b"],
                        CASSANDRA_HOSTS=found.cassandra_hosts,
                        CASSANDRA_PORT=found.cassandra_port, CASSANDRA_KEYSPACE=keyspace,
                        CONSUMER_GROUP=f"history-bench-{run_id}", PRICE_SOURCE="yahoo",
                        YAHOO_BASE_URL=market.url, BACKFILL_RANGE="0", DASHBOARD_PORT=port,
                        LOG_LEVEL="INFO")  # fmt: skip
        stages = Supervisor(work / "logs", env, cwd=REPO)
        cluster, session = cql_connect(found.cassandra_hosts, found.cassandra_port)
        dashboard = f"http://127.0.0.1:{port}"
        try:
            stages.start("storage")
            stages.wait_ready("storage", 300)
            stages.start("dashboard")
            wait_until(lambda: _up(dashboard), 120, "the dashboard", check=stages.check)
            names = [f"S{i:03d}" for i in range(symbols)]
            backfill = _backfill(env, stages, session, keyspace, dashboard, market, names)
            added = _adds(env, stages, found, dashboard, market, adds, run_id)
            gap = _gap(env, stages, session, keyspace, outage_s, open_market.url)
        finally:
            stages.stop_all()
            cluster.shutdown()
            market.stop()
            open_market.stop()
    return _report(symbols, outage_s, backfill, added, gap)


def _report(symbols: int, outage_s: float, backfill: dict, added: list[float], gap: dict) -> str:
    per_k = 1000 / backfill["bars"]
    return "\n".join([
        f"# History benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"The stand-in's Yahoo answers; storage and the dashboard as processes of their own; "
        f"{cpu_model()}.",
        "",
        "| what | figure |",
        "| --- | --- |",
        f"| backfill: {symbols} symbols x 5 trading days (7 calendar days) of 1m bars | "
        f"{backfill['bars']:,} bars |",
        f"| published to Kafka (the backfill command's run) | {backfill['publish_s']:.1f} s |",
        f"| stored in Cassandra (storage committed them all) | {backfill['stored_s']:.1f} s: "
        f"{backfill['bars'] / backfill['stored_s']:,.0f} bars/s |",
        f"| the last symbol's last 5 days charted by /api/candles | "
        f"{backfill['charted_s']:.1f} s |",
        f"| CPU of the backfill command / of storage per 1,000 bars | "
        f"{backfill['backfill_cpu'] * per_k:.3f} / {backfill['storage_cpu'] * per_k:.3f} "
        "CPU-s |",
        f"| a symbol added to the fleet -> its 5 days charted | {_quantiles(added)} |",
        f"| a {format_duration(int(outage_s * 1000))} outage ({gap['minutes']} minutes) -> "
        f"every minute stored after the restart | {gap['filled_s']:.1f} s (polling interval "
        f"{POLL_INTERVAL}) |",
        "",
        "The issue's goals: at least 20,000 bars/s; a new symbol's 5 days on the chart within "
        "10 s; a gap filled within one polling interval of the restart.",
        "",
        f"backfill: {backfill['out']}",
    ])  # fmt: skip


def _up(dashboard: str) -> bool:
    try:
        return bool(_get(f"{dashboard}/api/health"))
    except (OSError, ValueError):
        return False


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {statistics.median(values):.1f} s, max {max(values):.1f} s (n={len(values)})"


def capped_below(check, least_ms: int):
    """A duration of at least `least_ms`: a gap needs whole minutes to be missing."""

    def checked(text: str) -> int:
        value = check(text)
        if value < least_ms:
            raise argparse.ArgumentTypeError(f"must be at least {format_duration(least_ms)}")
        return value

    return checked


@dataclass(frozen=True)
class HistoryBenchSettings:
    symbols: int = option(
        "--symbols", "BENCH_SYMBOLS", "100", "symbols backfilled (100: about 195,000 bars)",
        positive_int,
    )  # fmt: skip
    adds: int = option(
        "--adds", "BENCH_ADDS", "5", "symbols added to a running fleet", positive_int
    )
    outage_ms: int = option(
        "--outage", "BENCH_OUTAGE", "10m", "how long the gap test's producer is away",
        capped_below(duration_ms, 120_000),
    )  # fmt: skip
    results_dir: Path = RESULTS_DIR.field()
    log_level: str = LOG_LEVEL.field()


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m bench.history", description=__doc__.split("\n\n")[0], environ=environ
    )
    add_options(parser, HistoryBenchSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    bench, _ = parse_settings(HistoryBenchSettings, build_parser(), argv)
    configure_logging(bench.log_level)
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        text = run(bench.symbols, bench.adds, bench.outage_ms / 1000, Path(tmp))
    publish(text, bench.results_dir, f"history-{stamp()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
