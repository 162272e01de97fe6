"""History fetched by the running producer itself: for each symbol it starts following (at start,
when one is added to the fleet's list), and after an outage, for the minutes it missed."""

from __future__ import annotations

import sys
import time
import uuid

from common.polling import wait_until

DAY_MS = 86_400_000
MINUTE = 60_000


def stored_minutes(history, symbol: str, start_ms: int, end_ms: int) -> set[int]:
    """Minutes in [start, end) with a stored 1m bar or at least one stored tick."""
    from storage.rows import utc_day

    minutes = {t for t in history.rows(symbol, "1m") if start_ms <= t < end_ms}
    statement = history.session.prepare(
        f"SELECT ts FROM {history.keyspace}.ticks WHERE symbol = ? AND day = ?"  # noqa: S608
    )
    for day in range(start_ms // DAY_MS, (end_ms - 1) // DAY_MS + 1):
        for row in history.session.execute(statement, (symbol, utc_day(day * DAY_MS))):
            t = int(row.ts.timestamp() * 1000) if row.ts.tzinfo else _ms(row.ts)
            if start_ms <= t < end_ms:
                minutes.add(t - t % MINUTE)
    return minutes


def _ms(naive) -> int:
    from datetime import timezone

    return int(naive.replace(tzinfo=timezone.utc).timestamp() * 1000)


def producer(history, name: str, *args: str) -> None:
    history.stages.start(name, [sys.executable, "-m", "producer", *args], log_name=name)


def test_after_a_ten_minute_outage_no_minute_is_missing(history):
    """The simulated source with its clock set back (SIM_START): the first run's live prices
    start 11 minutes before the second's, so 10 minutes pass between them in event time
    without the test waiting for them. On restart, the producer's backfill asks its source for
    the past up to where its new live prices begin, as it does with the wall clock."""
    now = int(time.time() * 1000)
    second_start = now - now % MINUTE
    first_start = second_start - 11 * MINUTE
    common = ["--source", "simulated", "--symbols", "AAPL", "--sim-rate", "20",
              "--backfill-range", "30m", "--backfill-daily-range", "0"]  # fmt: skip
    producer(history, "producer-1", *common, "--sim-start", str(first_start))
    history.wait_rows("AAPL", "1m", 30)  # its own backfill: the 30 minutes before it started
    wait_until(lambda: stored_minutes(history, "AAPL", first_start, first_start + MINUTE),
               60, "the first run's ticks in Cassandra", check=history.stages.check)  # fmt: skip
    history.stages.stop("producer-1")

    span = (first_start - 30 * MINUTE, second_start)
    everything = set(range(*span, MINUTE))
    missing = everything - stored_minutes(history, "AAPL", *span)
    # The outage: the minutes after the first run's few seconds, up to the second's start.
    assert missing == set(range(first_start + MINUTE, second_start, MINUTE)), sorted(missing)
    assert len(missing) == 10

    producer(history, "producer-2", *common, "--sim-start", str(second_start))
    filled = wait_until(
        lambda: not (everything - stored_minutes(history, "AAPL", *span)),
        60,
        "every minute of the outage stored",
        every_s=0.5,
        check=history.stages.check,
        describe=history.stages.tails,
    )
    assert filled
    rows = history.rows("AAPL", "1m")
    # The gap is filled with the source's own bars (the simulated past), one per minute.
    assert all(rows[m][5] == "simulated" for m in missing)


def test_a_symbol_added_to_the_fleet_gets_its_history(history, services):
    """A fleet of one polling the Yahoo stand-in: AAPL's 5 days are fetched at start, NVDA's as
    soon as it is added to the list while the producer runs."""
    if not services.zookeeper_connect:
        import pytest

        pytest.skip("these services have no ZooKeeper")
    chroot = f"/test-{uuid.uuid4().hex[:8]}"
    fleet = ["--coordinator", services.zookeeper_connect, "--fleet-chroot", chroot]
    producer(history, "producer", "--source", "yahoo", "--yahoo-base-url", history.market.url,
             "--symbols", "AAPL", "--interval", "5s", "--backfill-range", "5d",
             "--backfill-pause", "0", "--backfill-daily-range", "0", *fleet)  # fmt: skip
    wait_until(lambda: history.market.asked.get("AAPL"), 60, "AAPL's history asked for",
               check=history.stages.check)  # fmt: skip
    want = history.market.bars_asked("AAPL")
    assert len(want) > 1000
    history.wait_rows("AAPL", "1m", len(want))
    assert history.rows("NVDA", "1m") == {}

    added = time.monotonic()
    history.stages.start("symbols", [sys.executable, "-m", "producer", "symbols", "add", "NVDA",
                                     *fleet], may_exit=True)  # fmt: skip
    wait_until(lambda: history.market.asked.get("NVDA"), 60, "NVDA's history asked for",
               check=history.stages.check)  # fmt: skip
    want_nvda = history.market.bars_asked("NVDA")
    rows = history.wait_rows("NVDA", "1m", len(want_nvda), timeout_s=120)
    took = time.monotonic() - added
    assert {t: r[:5] for t, r in rows.items()} == want_nvda
    # Its history came first, between rounds; its live quotes follow in the next round.
    wait_until(lambda: history.market.requests["NVDA"] >= 2, 30, "NVDA's live quotes polled",
               check=history.stages.check)  # fmt: skip
    print(f"NVDA's 5 days of 1m bars ({len(rows)}) stored {took:.1f} s after `symbols add`")
    assert len(want_nvda) > 1000  # several sessions of minutes
