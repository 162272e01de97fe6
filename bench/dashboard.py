"""python -m bench.dashboard: the dashboard's three figures, on real Kafka, Cassandra and chromium.

1. /api/bars for a day of 1-minute bars (1,440 rows of one daily partition, prepared
   statements, the HTTP round trip included): latency of sequential requests on a keep-alive
   connection. Goal: < 50 ms.
2. tick published -> shown on the page: ticks are published to Kafka stamped with the time of
   publishing; the page runs in headless chromium and a MutationObserver notes, at the next
   animation frame after the price cell changes, how long after its tick's publish time the
   new price is on screen (both clocks are this machine's). Goal: p95 < 1 s.
3. 100 concurrent live clients: 100 Server-Sent-Event streams (10 per symbol, over 10 symbols)
   while ticks flow at a steady rate; the dashboard process's CPU (user + system, all threads,
   from /proc) over the run, every stream's delivery latency, and whether all 100 stay
   connected. Goal: under one core. The browser keeps measuring (2) meanwhile.

Kafka and Cassandra: the running ones that KAFKA_BOOTSTRAP_SERVERS and CASSANDRA_HOSTS name, or
a private stack on free ports (stack.endpoints); topics and keyspace are the run's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path

from bench.cpu import cpu_model, cpu_seconds
from bench.results import RESULTS_DIR, publish, stamp
from common.contract import Aggregate, Tick, now_ms
from common.logs import configure_logging
from common.polling import wait_until
from common.settings import (
    LOG_LEVEL,
    EnvArgumentParser,
    add_options,
    option,
    parse_settings,
    positive_float,
    positive_int,
)
from stack.endpoints import services
from stack.settings import free_port
from stack.supervisor import Supervisor

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DAY_MS = 86_400_000
BARS_DAY_MS = 1_756_252_800_000  # 2025-08-27T00:00:00Z: a fixed day, so runs compare
LATENCY_SYMBOL = "LAT"

# Records, at the next frame after #price-LAT changes, now - the tick's time (its data-ts).
OBSERVE = """
window.__shown = [];
const cell = document.getElementById(arguments[0]);
let last = Number(cell.dataset.ts);
new MutationObserver(() => {
  const ts = Number(cell.dataset.ts);
  if (ts === last) return;  // the same tick drawn again (the periodic reload of /api/latest)
  last = ts;
  requestAnimationFrame(() => window.__shown.push([ts, Date.now() - ts]));
}).observe(cell, {attributes: true, attributeFilter: ['data-ts']});
"""


@dataclass(frozen=True)
class BenchSettings:
    seconds: float = option(
        "--seconds", "BENCH_SECONDS", "30", "length of each live phase", positive_float
    )
    clients: int = option("--clients", "BENCH_CLIENTS", "100", "live SSE clients", positive_int)
    rate: int = option(
        "--rate",
        "BENCH_RATE",
        "1000",
        "ticks per second published during the live phases (over 50 symbols)",
        positive_int,
    )
    requests: int = option(
        "--requests", "BENCH_REQUESTS", "200", "/api/bars requests timed", positive_int
    )
    results_dir: Path = RESULTS_DIR.field()
    log_level: str = LOG_LEVEL.field()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"n={len(values)} p50={percentile(values, 50):.1f} p95={percentile(values, 95):.1f} "
        f"p99={percentile(values, 99):.1f} max={max(values):.1f} ms"
    )


# --- the pieces ----------------------------------------------------------------------------------


class Run:
    def __init__(self, found, tmp: Path):
        suffix = uuid.uuid4().hex[:8]
        self.found = found
        self.tmp = tmp
        self.topics = {
            "ticks": f"bench_dash_ticks_{suffix}",
            "aggregates": f"bench_dash_aggs_{suffix}",
            "dead_letters": f"bench_dash_dead_{suffix}",
        }
        self.keyspace = f"bench_dash_{suffix}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            **found.env(),
            "TICKS_TOPIC": self.topics["ticks"],
            "AGGREGATES_TOPIC": self.topics["aggregates"],
            "DEAD_LETTER_TOPIC": self.topics["dead_letters"],
            "CASSANDRA_KEYSPACE": self.keyspace,
            "DASHBOARD_PORT": str(self.port),
            "DASHBOARD_CONSUMER_GROUP": f"bench-dashboard-{suffix}",
            "WINDOWS": "10s,1m,5m",
            "LOG_LEVEL": "WARNING",
        }
        self.stages = Supervisor(tmp / "logs", self.env, cwd=REPO, grace_s={"dashboard": 15.0})

    def setup(self) -> None:
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.found.bootstrap_servers)
        try:
            admin.create_topics([NewTopic(t, 3, 1) for t in self.topics.values()])
        finally:
            admin.close()
        done = subprocess.run(
            [sys.executable, "-m", "storage", "init-schema"],
            env=self.env, cwd=REPO, capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"init-schema failed:\n{done.stderr[-2000:]}")
        self.stages.start("dashboard")
        wait_until(
            lambda: _status(self.url + "/api/latest") == 200,
            90,
            "the dashboard to serve",
            check=self.stages.check,
            describe=self.stages.tails,
        )

    def teardown(self) -> None:
        self.stages.stop_all()
        from cassandra.cluster import Cluster

        cluster = Cluster(list(self.found.cassandra_hosts), port=self.found.cassandra_port)
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {self.keyspace}")
        finally:
            cluster.shutdown()
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.found.bootstrap_servers)
        try:
            admin.delete_topics(list(self.topics.values()))
        finally:
            admin.close()

    def dashboard_pid(self) -> int:
        return self.stages.procs["dashboard"].pid


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
            return r.status
    except OSError:
        return 0


# --- 1. /api/bars for a day -----------------------------------------------------------------------


def bench_bars(run: Run, requests: int) -> tuple[list[float], float]:
    from cassandra.cluster import Cluster
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.util import Date

    cluster = Cluster(list(run.found.cassandra_hosts), port=run.found.cassandra_port)
    try:
        session = cluster.connect()
        insert = session.prepare(
            f"INSERT INTO {run.keyspace}.aggregates (symbol, window_ms, day, window_start, "  # noqa: S608
            "window_end, open, high, low, close, avg, vwap, volume, count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        rows = []
        for i in range(1440):
            start = BARS_DAY_MS + i * 60_000
            a = Aggregate("BARS", 60_000, start, start + 60_000, 100.0, 101.0, 99.0, 100.5,
                          100.2, 100.3, 1000 + i, 60)  # fmt: skip
            rows.append((a.symbol, a.window_ms, Date(start // DAY_MS), a.window_start,
                         a.window_end, a.open, a.high, a.low, a.close, a.avg, a.vwap,
                         a.volume, a.count))  # fmt: skip
        execute_concurrent_with_args(session, insert, rows, concurrency=64)
    finally:
        cluster.shutdown()
    path = f"/api/bars?symbol=BARS&window=1m&from={BARS_DAY_MS}&to={BARS_DAY_MS + DAY_MS}"
    conn = HTTPConnection("127.0.0.1", run.port, timeout=10)
    timings = []
    cpu_before = 0.0
    try:
        for i in range(requests + 10):
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"/api/bars answered {response.status}: {body[:200]!r}")
            if i == 0:
                got = len(json.loads(body)["bars"])
                if got != 1440:
                    raise RuntimeError(f"/api/bars gave {got} bars, not 1440")
            if i == 9:
                cpu_before = cpu_seconds(run.dashboard_pid())
            if i >= 10:  # the first ones warm the connection and the prepared statements
                timings.append(elapsed)
        # What a request costs the server in CPU: a figure that a busy machine inflates less
        # than the wall-clock latency.
        cpu_ms = (cpu_seconds(run.dashboard_pid()) - cpu_before) * 1000 / requests
    finally:
        conn.close()
    return timings, cpu_ms


# --- 2 and 3: live ------------------------------------------------------------------------------


class Publisher(threading.Thread):
    """Publishes ticks at a steady rate over 50 symbols, plus LAT ticks 5 times a second, each
    stamped with the time it is sent."""

    def __init__(self, bootstrap: str, topic: str, rate: int):
        super().__init__(name="publisher", daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.rate = rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=0)
        step = 0.02
        per_step = max(1, round(self.rate * step))
        seq = 0
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                now = now_ms()
                for i in range(per_step):
                    symbol = f"S{(seq + i) % 50:02d}"
                    tick = Tick(symbol, 100.0 + (seq % 1000) / 100, 5, now, "bench", seq % 1000)
                    producer.send(self.topic, key=tick.key, value=tick.to_json())
                if seq % (10 * per_step) < per_step:  # every 0.2 s
                    price = 100.0 + (seq // per_step) % 500 / 100
                    lat = Tick(LATENCY_SYMBOL, price, 1, now_ms(), "bench", 0)
                    producer.send(self.topic, key=lat.key, value=lat.to_json())
                seq += per_step
                self.sent += per_step
                producer.flush()
                next_at += step
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            producer.close()


def open_browser(run: Run):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={run.tmp / 'profile'}",
                "--window-size=1280,900"):  # fmt: skip
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.get(f"{run.url}/?symbol={LATENCY_SYMBOL}&window=10s")
    wait_until(
        lambda: browser.execute_script(
            f"const c = document.getElementById('price-{LATENCY_SYMBOL}');"
            "return c && c.dataset.ts && c.dataset.ts !== 'null';"
        ),
        60,
        "the latency symbol's price on the page",
    )
    browser.execute_script(OBSERVE, f"price-{LATENCY_SYMBOL}")
    return browser


def shown_latencies(browser) -> list[float]:
    return [float(ms) for _, ms in browser.execute_script("return window.__shown.splice(0)")]


async def sse_clients(url: str, n: int, seconds: float) -> tuple[list[float], int, int]:
    """n live streams for `seconds`: delivery latencies (ms), streams still open at the end,
    and events received."""
    import aiohttp

    latencies: list[float] = []
    open_at_end = 0
    events = 0

    async def one(i: int, session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal open_at_end, events
        symbol = f"S{i % 10:02d}"
        async with session.get(f"{url}/api/live?symbol={symbol}") as response:
            while time.monotonic() < deadline:
                try:
                    line = await asyncio.wait_for(
                        response.content.readline(), deadline - time.monotonic()
                    )
                except asyncio.TimeoutError:
                    break
                if not line:
                    return  # the server closed the stream
                if line.startswith(b'data: {"latest"'):
                    events += 1
                    arrived = now_ms()
                    body = json.loads(line[6:])
                    for ts, _price, _volume in body.get("ticks", ()):
                        latencies.append(arrived - ts)
            open_at_end += 1

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(one(i, session, deadline) for i in range(n)))
    return latencies, open_at_end, events


def bench_live(run: Run, s: BenchSettings) -> dict:
    publisher = Publisher(run.found.bootstrap_servers, run.topics["ticks"], s.rate)
    publisher.start()
    browser = None
    try:
        # The dashboard's group joins and the page learns the symbol from the first LAT ticks.
        browser = open_browser(run)
        shown_latencies(browser)
        pid = run.dashboard_pid()

        # (2) the page alone.
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(s.seconds)
        alone_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        alone = shown_latencies(browser)

        # (3) 100 live clients beside the page.
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        streams, still_open, events = asyncio.run(sse_clients(run.url, s.clients, s.seconds))
        loaded_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        loaded = shown_latencies(browser)
        with urllib.request.urlopen(run.url + "/api/health", timeout=10) as r:  # noqa: S310
            health = json.loads(r.read())
    finally:
        publisher.stop.set()
        publisher.join(10)
        if browser is not None:
            browser.quit()
    return {
        "alone": alone,
        "alone_cpu": alone_cpu,
        "loaded": loaded,
        "loaded_cpu": loaded_cpu,
        "streams": streams,
        "still_open": still_open,
        "events": events,
        "dropped": health["live"]["dropped_clients"],
        "published": publisher.sent,
    }


# --- main --------------------------------------------------------------------------------------


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m bench.dashboard", description=__doc__.split("\n")[0], environ=environ
    )
    add_options(parser, BenchSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    s, _ = parse_settings(BenchSettings, build_parser(), argv)
    configure_logging(s.log_level)
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        print("needs Debian's chromium and chromium-driver: apt-get install chromium "
              "chromium-driver", file=sys.stderr)  # fmt: skip
        return 1
    with (
        tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp,
        services(os.environ, Path(tmp), kafka_heap="512m") as found,
    ):
        run = Run(found, Path(tmp))
        try:
            run.setup()
            load_before = os.getloadavg()[0]
            bars, bars_cpu_ms = bench_bars(run, s.requests)
            live = bench_live(run, s)
        finally:
            run.teardown()
    worst = max(percentile(live["alone"], 95), percentile(live["loaded"], 95))
    held = live["loaded_cpu"] < 1 and live["still_open"] == s.clients
    text = "\n".join([
        f"dashboard bench ({cpu_model()}, shared with Kafka, Cassandra, chromium and the load "
        "generator)",
        f"load average (1 min) at the start {load_before:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f}",
        f"/api/bars, a day of 1-minute bars (1,440), sequential: {summary(bars)}",
        f"  the dashboard's CPU per request: {bars_cpu_ms:.1f} ms",
        f"  goal p95 < 50 ms: {'met' if percentile(bars, 95) < 50 else 'NOT met'}",
        f"live feed: {live['published']:,} ticks published at {s.rate}/s, "
        f"{s.seconds:.0f} s per phase",
        f"tick published -> shown on the page, page alone:   {summary(live['alone'])}",
        f"tick published -> shown on the page, {s.clients} clients: {summary(live['loaded'])}",
        f"  goal p95 < 1000 ms: {'met' if worst < 1000 else 'NOT met'}",
        f"dashboard CPU: {live['alone_cpu']:.2f} cores with the page alone, "
        f"{live['loaded_cpu']:.2f} cores with {s.clients} live clients",
        f"{s.clients} SSE clients: {live['still_open']} open to the end, {live['dropped']} "
        f"dropped, {live['events']:,} events; delivery {summary(live['streams'])}",
        f"  goal {s.clients} clients under one core: {'met' if held else 'NOT met'}",
    ])  # fmt: skip
    publish(text, s.results_dir, f"dashboard-{stamp()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
