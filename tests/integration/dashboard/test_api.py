"""The dashboard's JSON API on real Kafka and Cassandra: data published to Kafka, stored by the
storage stage, read back through `python -m dashboard`; bad requests answered with a 400.
"""

from __future__ import annotations

import urllib.parse
import urllib.request

import pytest

from common.contract import Aggregate, Tick, now_ms
from common.polling import wait_until
from tests.integration.storage.conftest import produce, storage_running

from .conftest import get, live_tick_arrives

DAY = 86_400_000
MIDNIGHT = now_ms() // DAY * DAY  # today's, UTC: the data straddles it
MIN = 60_000


def tick(symbol: str, offset_s: int, price: float, volume: int = 10, seq: int = 0) -> Tick:
    return Tick(symbol, price, volume, MIDNIGHT + offset_s * 1000, "pytest", seq)


TICKS = [
    tick("DASHA", -180, 100.0),
    tick("DASHA", -120, 101.0),
    tick("DASHA", -60, 102.0),
    tick("DASHA", 60, 110.0),
    tick("DASHA", 120, 111.0),
    tick("DASHA", 180, 112.5),
    tick("DASHB", 60, 50.0),
]


def bar(start_ms: int, window_ms: int, base: float) -> Aggregate:
    return Aggregate("DASHA", window_ms, start_ms, start_ms + window_ms, base, base + 2,
                     base - 1, base + 1, base + 0.5, base + 0.6, 100 + int(base), 3)  # fmt: skip


BARS_1M = [bar(MIDNIGHT + k * MIN, MIN, 100.0 + k) for k in (-3, -2, -1, 0, 1)]
BARS_10S = [bar(MIDNIGHT - 10_000, 10_000, 90.0), bar(MIDNIGHT, 10_000, 91.0)]


@pytest.fixture
def stored(services, topics, storage_settings_for, dashboard):
    """The ticks and bars above, in Cassandra through the storage stage; the dashboard up."""
    with storage_running(storage_settings_for):
        produce(services.bootstrap_servers, topics["ticks"], [t.to_json() for t in TICKS])
        produce(
            services.bootstrap_servers,
            topics["aggregates"],
            [a.to_json() for a in BARS_1M + BARS_10S],
        )
        wait_until(
            lambda: len(dashboard.get("/api/ticks?symbol=DASHA&last=100").body["ticks"]) == 6
            and len(dashboard.get(f"/api/bars?symbol=DASHA&window=1m&from={MIDNIGHT - DAY}"
                                  f"&to={MIDNIGHT + DAY}").body["bars"]) == 5,
            90,
            "the ticks and bars to be stored and served",
        )  # fmt: skip
        yield dashboard


def test_latest_gives_each_symbols_newest_price_and_change_since_the_days_first_tick(stored):
    answer = stored.get("/api/latest")
    assert answer.status == 200
    prices = {p["symbol"]: p for p in answer.body["prices"]}
    assert sorted(prices) == ["DASHA", "DASHB"]
    a = prices["DASHA"]
    assert (a["price"], a["ts"], a["source"]) == (112.5, MIDNIGHT + 180_000, "pytest")
    # Today's first tick is the one a minute after midnight, not yesterday's.
    assert a["day_open"] == 110.0
    assert a["change"] == pytest.approx(2.5)
    assert a["change_pct"] == pytest.approx(2.5 / 110 * 100)
    assert prices["DASHB"]["change"] == 0


def test_bars_are_the_stored_aggregates_of_the_window_and_range_oldest_first(stored):
    start, end = MIDNIGHT - 2 * MIN, MIDNIGHT + MIN
    answer = stored.get(f"/api/bars?symbol=dasha&window=1m&from={start}&to={end}")
    assert answer.status == 200
    body = answer.body
    assert (body["symbol"], body["window_ms"], body["window"]) == ("DASHA", MIN, "1m")
    assert (body["from"], body["to"]) == (start, end)
    want = [b for b in BARS_1M if start <= b.window_start < end]
    assert len(want) == 3  # two before midnight, one after: both daily partitions are read
    assert body["bars"] == [
        {"t": b.window_start, "open": b.open, "high": b.high, "low": b.low, "close": b.close,
         "vwap": b.vwap, "volume": b.volume, "count": b.count}
        for b in want
    ]  # fmt: skip
    iso = stored.get(
        "/api/bars?symbol=DASHA&window=10000&from="
        + urllib.parse.quote(_iso(MIDNIGHT - MIN))
        + "&to="
        + urllib.parse.quote(_iso(MIDNIGHT + MIN))
    )
    assert [b["t"] for b in iso.body["bars"]] == [b.window_start for b in BARS_10S]
    assert stored.get("/api/bars?symbol=DASHB&window=1m").body["bars"] == []


def test_ticks_are_the_newest_first_across_days(stored):
    answer = stored.get("/api/ticks?symbol=DASHA&last=4")
    assert answer.status == 200
    got = [(t["ts"], t["price"]) for t in answer.body["ticks"]]
    dasha = sorted((t for t in TICKS if t.symbol == "DASHA"), key=lambda t: -t.ts)
    assert got == [(t.ts, t.price) for t in dasha[:4]]
    assert len(stored.get("/api/ticks?symbol=DASHA").body["ticks"]) == 6


def test_health_shows_storage_lag_and_the_dead_letters_of_the_last_hour(services, topics, stored):
    produce(services.bootstrap_servers, topics["ticks"], [b'{"symbol": "DASHA", "price": -1}'])

    def reported() -> dict | None:
        body = stored.get("/api/health").body
        kafka = body.get("kafka", {})
        return body if kafka.get("dead_letters_last_hour") == 1 else None

    body = wait_until(reported, 60, "the dead letter to be counted")
    assert body["cassandra"]["ok"] is True
    kafka = body["kafka"]
    assert kafka["topics"]["ticks"]["messages_end"] == len(TICKS) + 1
    assert kafka["topics"]["aggregates"]["newest_age_s"] is not None
    storage_lags = {(x["topic"], x["stage"]) for x in kafka["lag"] if x["stage"] == "storage"}
    assert storage_lags == {(topics["ticks"], "storage"), (topics["aggregates"], "storage")}


def test_live_stream_delivers_new_ticks_of_the_chosen_symbol(services, topics, stored):
    event = live_tick_arrives(stored.url, services.bootstrap_servers, topics["ticks"], "DASHA")
    ts, price, volume = event["ticks"][-1]
    assert price > 200 and volume == 7
    assert ["DASHA", price, ts] == event["latest"][0][:3]


BAD_REQUESTS = [
    ("/api/bars", "'symbol' is required"),
    ("/api/bars?symbol=AAPL%27%3B%20DROP%20TABLE%20ticks", "is not valid"),
    ("/api/bars?symbol=AAPL&window=2m", "not one of the window sizes computed: 10s, 1m, 5m"),
    ("/api/bars?symbol=AAPL&from=tomorrow", "is not a time"),
    ("/api/bars?symbol=AAPL&from=2025-01-02&to=2025-01-01", "the range is empty"),
    ("/api/bars?symbol=AAPL&window=5m&from=2025-01-01&to=2025-03-01", "at most 31 days"),
    ("/api/bars?symbol=AAPL&window=10s&from=2025-01-01&to=2025-01-03", "at most 10000"),
    ("/api/bars?symbol=AAPL&from=1", "out of range"),
    ("/api/bars?symbol=AAPL&symbol=MSFT", "given twice"),
    ("/api/bars?symbol=AAPL&limit=5", "unknown parameter 'limit'"),
    ("/api/ticks?symbol=AAPL&last=0", "from 1 to 1000"),
    ("/api/ticks?symbol=AAPL&last=1000000", "from 1 to 1000"),
    ("/api/ticks?symbol=" + "A" * 100, "too long"),
    ("/api/ticks?symbol=%00", "is not valid"),
    ("/api/live?symbol=%F0%9F%92%A5", "is not valid"),
    ("/api/latest?x=1", "takes no parameters"),
    ("/api/health?verbose=1", "takes no parameters"),
]


def test_bad_parameters_are_a_400_that_says_what_to_send(dashboard):
    for path, message in BAD_REQUESTS:
        answer = dashboard.get(path)
        assert answer.status == 400, (path, answer.status, answer.text)
        assert message in answer.body["error"], (path, answer.body)
    assert dashboard.get("/api/nothing").status == 404
    # The static folder serves only its own files.
    for path in ("/static/../settings.py", "/static/%2e%2e/settings.py", "/static/..%2fserver.py"):
        answer = dashboard.get(path)
        assert answer.status in (403, 404), (path, answer.status)
        assert "import" not in answer.text
    assert "Traceback" not in dashboard.log()


def test_without_cassandra_data_the_api_says_503_and_still_checks_parameters(
    services, topics, tmp_path
):
    from stack.settings import free_port
    from stack.supervisor import Supervisor

    from .conftest import REPO, dashboard_env, start_dashboard

    # A keyspace that does not exist: the dashboard cannot prepare its statements.
    env = dashboard_env(services, topics, "no_such_keyspace_dash", free_port())
    stages = Supervisor(tmp_path / "logs", env, cwd=REPO)
    try:
        running = start_dashboard(stages, env)
        latest = running.get("/api/latest")
        assert latest.status == 503
        assert "Cassandra" in latest.body["error"]
        assert running.get("/api/bars?symbol=AAPL&window=7m").status == 400
        health = running.get("/api/health")
        assert health.status == 200
        assert health.body["status"] == "degraded"
        assert health.body["cassandra"]["ok"] is False
        # And the page itself still loads, to show that.
        page = get(running.url)
        assert page.status == 200 and "<title>Stock-System dashboard</title>" in page.text
    finally:
        codes = stages.stop_all()
    assert codes["dashboard"] == 0


def _iso(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()
