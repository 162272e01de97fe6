"""`python -m producer backfill` from the Yahoo and Stooq stand-ins into Cassandra: every bar the
source has is stored as it was given, a second run changes no row, and hostile answers become
dead letters with their reasons while the good bars still arrive."""

from __future__ import annotations

import json
import time

from common.contract import DEAD_LETTER_MAX_BYTES, read_dead_letter
from stack import history_stand_in as stand_in
from tests.integration.producer.conftest import read_topic

DAY_MS = 86_400_000


def expected_bars(symbol: str, interval: str, end_ms: int, range_ms: int) -> dict[int, tuple]:
    """What the stand-in's market holds for symbol over the range a backfill asks."""
    step = {"1m": 60_000, "1d": DAY_MS}[interval]
    end = end_ms - end_ms % step
    rows = stand_in.bars(symbol, interval, (end - range_ms) // 1000, end // 1000)
    out = {}
    for t, o, h, lo, c, v in rows:
        if o is None:
            continue
        start = t * 1000 if interval == "1m" else (t - 18000) // 86400 * DAY_MS
        out[start] = (o, h, lo, c, v)
    return out


def test_a_backfill_stores_every_bar_and_a_second_one_changes_nothing(history):
    began = int(time.time() * 1000)
    done = history.backfill("AAPL", "MSFT", "NODATA", "--source", "yahoo", "--range", "5d",
                            "--interval", "1m", "--pause", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    print(done.stdout.strip())
    for symbol in ("AAPL", "MSFT"):
        # The bars of the range the backfill asked for (its "now" is a little after ours).
        [(interval, first, last)] = history.market.asked[symbol]
        assert (interval, last - first) == ("1m", 5 * 86_400)  # one request: 5 days, under 7
        want = history.market.bars_asked(symbol)
        assert want == expected_bars(symbol, "1m", last * 1000, 5 * DAY_MS)
        assert len(want) > 1000  # several sessions: the weekend and the nulls left out
        rows = history.wait_rows(symbol, "1m", len(want))
        assert {t: r[:5] for t, r in rows.items()} == want
        assert {r[5] for r in rows.values()} == {"yahoo"}
    assert history.rows("NODATA", "1m") == {}
    assert "bars=" in done.stdout and "empty=1" in done.stdout

    # Stooq's daily history of a year, beside the minutes.
    daily = history.backfill("AAPL", "--source", "stooq", "--range", "1y", "--interval", "1d")
    assert daily.returncode == 0, daily.stderr
    want_daily = expected_bars("AAPL", "1d", began, 365 * DAY_MS)
    days = history.wait_rows("AAPL", "1d", len(want_daily))
    assert {t: r[:5] for t, r in days.items()} == want_daily
    assert 250 <= len(days) <= 262  # a year of weekdays

    before = history.rows("AAPL", "1m")
    again = history.backfill("AAPL", "--source", "yahoo", "--range", "5d", "--interval", "1m",
                             "--pause", "0")  # fmt: skip
    assert again.returncode == 0, again.stderr

    # Written again (newer write times), with the same values: the rows did not change. Only
    # the minutes wholly inside both runs' ranges: the second's 5 days begin a little later,
    # and when 5 days ago was a trading hour its first minutes are not asked again.
    [*_, (_, again_from_s, _)] = [a for a in history.market.asked["AAPL"] if a[0] == "1m"]
    both = {t for t in before if t >= again_from_s * 1000 + 60_000}
    assert len(both) > 1000

    def rewritten() -> dict | None:
        rows = history.rows("AAPL", "1m")
        return rows if all(rows[t][6] > before[t][6] for t in both) else None

    from common.polling import wait_until

    after = wait_until(rewritten, 120, "the second backfill to be stored", every_s=0.5)
    assert {t: after[t][:6] for t in both} == {t: before[t][:6] for t in both}


def test_hostile_history_answers_are_dead_letters_and_the_good_bars_still_arrive(history):
    symbols = ["GARBAGE", "RAGGED", "BADPRICE", "THROTTLED", "HUGE", "ZZZZ", "AAPL"]
    # 4 days: whenever the test runs they hold a session (Friday's close to Monday's open is
    # 2 days 17.5 hours); 2 days held none from Sunday 20:00 UTC on.
    done = history.backfill(*symbols, "--source", "yahoo", "--range", "4d", "--interval", "1m",
                            "--pause", "0", "--http-retries", "3",
                            "--http-backoff", "100ms")  # fmt: skip
    # HUGE never gave an answer that fits: the run says so and fails, after doing the rest.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "HUGE" in done.stderr and "failed=1" in done.stdout
    want = history.market.bars_asked("AAPL")
    assert want, "the range holds no trading minute: the test would prove nothing"
    throttled = history.market.bars_asked("THROTTLED")
    history.wait_rows("AAPL", "1m", len(want))
    assert len(history.wait_rows("THROTTLED", "1m", len(throttled))) == len(throttled)
    assert history.market.requests["THROTTLED"] == 3  # two 429s, then the answer
    bad = history.market.bars_asked("BADPRICE")
    stored_bad = history.wait_rows("BADPRICE", "1m", len(bad) - 3)
    assert len(stored_bad) == len(bad) - 3  # the three broken bars only are left out
    for symbol in ("GARBAGE", "RAGGED", "ZZZZ", "HUGE"):
        assert history.rows(symbol, "1m") == {}

    letters = read_topic(history.env["KAFKA_BOOTSTRAP_SERVERS"],
                         history.env["DEAD_LETTER_TOPIC"], 6)  # fmt: skip
    reasons = {}
    for record in letters:
        assert len(record.value) <= DEAD_LETTER_MAX_BYTES
        letter = read_dead_letter(record.value)
        assert letter["stage"] == "producer"
        reasons.setdefault(letter["origin"].get("symbol"), []).append(letter["reason"])
    assert any("not a chart" in r for r in reasons["GARBAGE"]), reasons
    assert any("different lengths" in r for r in reasons["RAGGED"]), reasons
    assert any("unknown symbol" in r for r in reasons["ZZZZ"]), reasons
    assert len(reasons["BADPRICE"]) == 3, reasons
    assert set(reasons) == {"GARBAGE", "RAGGED", "ZZZZ", "BADPRICE"}, reasons
    # Nothing of it reached the ticks: history is not a tick.
    assert read_topic(history.env["KAFKA_BOOTSTRAP_SERVERS"], history.env["TICKS_TOPIC"], 0,
                      timeout_s=3) == []  # fmt: skip
    json.dumps(reasons)  # every reason is plain text
