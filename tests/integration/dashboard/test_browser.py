"""The page in a real browser (Debian's chromium, headless, driven by Selenium) while the whole
pipeline runs: the simulated source publishes, storage and the processor fill Cassandra, and the
dashboard shows it. The chart must open on the producer's backfilled day of history, the AAPL
price must change on screen within seconds, the chart must draw candles from stored aggregates,
and a phone-sized window must not scroll sideways.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from common.polling import wait_until
from stack.settings import free_port
from stack.supervisor import Supervisor

from .conftest import REPO, dashboard_env, start_dashboard

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


def headless_chromium(profile: Path, width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


# Counts the pixels of the chart's canvases that have the up or down candle colour.
CANDLE_PIXELS = """
let n = 0;
for (const canvas of document.querySelectorAll('#chart canvas')) {
  if (!canvas.width || !canvas.height) continue;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if ((r === 38 && g === 166 && b === 154) || (r === 239 && g === 83 && b === 80)) n++;
  }
}
return n;
"""


@pytest.fixture
def pipeline(services, topics, schema_keyspace, spark_jars, tmp_path):
    """Storage, processor (10 s windows), the simulated producer and the dashboard."""
    env = dashboard_env(services, topics, schema_keyspace, free_port())
    env.update(
        {
            "WINDOWS": "10s,1m",
            "WATERMARK": "2s",
            "CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
            "SPARK_MASTER": "local[1]",
            "SPARK_JARS": ",".join(str(j) for j in spark_jars),
            "SHUFFLE_PARTITIONS": "1",
            "TRIGGER_INTERVAL": "500ms",
            # A batch each interval, as TRIGGER_INTERVAL asks, rather than waiting for
            # 500 ticks at these low test rates (test_trigger.py covers the wait).
            "MIN_OFFSETS_PER_TRIGGER": "0",
            "STACK_CACHE_DIR": str(services.cache_dir),
        }
    )
    if services.zookeeper_connect:
        # The producer as a fleet of one, which the health panel shows.
        env.update(ZOOKEEPER_HOSTS=services.zookeeper_connect,
                   FLEET_CHROOT=f"/test-{uuid.uuid4().hex[:8]}")  # fmt: skip
    stages = Supervisor(tmp_path / "logs", env, cwd=REPO, grace_s=dict.fromkeys(
        ("dashboard", "storage", "processor", "producer"), 30.0))  # fmt: skip
    try:
        stages.start("storage")
        stages.start("processor")
        stages.wait_ready("processor", 180)
        stages.start(
            "producer",
            [
                sys.executable, "-m", "producer", "--source", "simulated", "--symbols", "AAPL,MSFT",
                "--sim-rate", "4", "--backfill-range", "1d", "--backfill-daily-range", "0",
            ],
        )  # fmt: skip
        yield start_dashboard(stages, env), stages
    finally:
        stages.stop_all()


def test_the_page_shows_aapl_moving_and_candles_from_the_pipeline(pipeline, tmp_path):
    running, stages = pipeline
    screenshots = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    browser = headless_chromium(tmp_path / "profile", 1280, 900)
    try:
        # The producer backfilled AAPL's last day when it started: once storage has it, the
        # page opens on it (its default: a day of 1-minute candles), not on an empty chart.
        def stored_history() -> int:
            day_ago = int(time.time() * 1000) - 86_400_000 - 120_000
            answer = running.get(f"/api/candles?symbol=AAPL&window=1m&from={day_ago}")
            return answer.status == 200 and sum(c["history"] for c in answer.body["candles"])

        wait_until(lambda: stored_history() >= 1400, 120, "AAPL's day of history stored",
                   every_s=0.5, check=stages.check, describe=stages.tails)  # fmt: skip
        browser.get(running.url + "?symbol=AAPL")
        history = wait_until(
            lambda: int(browser.find_element("id", "chart").get_attribute(
                "data-history-candles") or 0) >= 1400 and browser.execute_script(CANDLE_PIXELS),
            30,
            "history candles on the page as it opens",
            every_s=0.2,
        )  # fmt: skip
        assert history > 100  # drawn: pixels of the candle colours
        browser.save_screenshot(str(screenshots / "dashboard-history.png"))

        browser.get(running.url + "?symbol=AAPL&window=10s")

        def aapl_shown() -> tuple[str, str] | None:
            # Through the DOM, as a person reads it: the cell's text and the tick time it shows.
            found = browser.execute_script(
                "const c = document.getElementById('price-AAPL');"
                "return c && c.textContent !== '–' ? [c.textContent, c.dataset.ts] : null;"
            )
            return tuple(found) if found else None

        first = wait_until(aapl_shown, 90, "the AAPL price on the page", check=stages.check)
        started = time.monotonic()
        changed = wait_until(
            lambda: (now := aapl_shown()) and now[0] != first[0] and now,
            15,
            f"the AAPL price on screen to change from {first[0]}",
            every_s=0.1,
            check=stages.check,
        )
        took = time.monotonic() - started
        assert float(changed[0].replace(",", "")) > 0
        assert int(changed[1]) > int(first[1]), "the newer price must come from a newer tick"
        print(f"AAPL went from {first[0]} to {changed[0]} on screen in {took:.1f} s")

        def stored_candles() -> int:
            # Reloaded from /api/bars every 10 s: stored aggregates, not just the live candle.
            chart = browser.find_element("id", "chart")
            return int(chart.get_attribute("data-stored-candles") or 0)

        wait_until(lambda: stored_candles() >= 2, 120, "candles from stored aggregates",
                   every_s=0.5, check=stages.check, describe=stages.tails)  # fmt: skip
        candles = int(browser.find_element("id", "chart").get_attribute("data-candles"))
        assert candles >= stored_candles()
        # The chart is drawn: its canvases hold pixels of the candle colours.
        assert browser.execute_script(CANDLE_PIXELS) > 100
        assert browser.find_element("id", "health-status").text in ("ok", "degraded")
        if "ZOOKEEPER_HOSTS" in running.env:

            def fleet_rows() -> list | None:
                # The health panel's fleet table as it reads: symbol, held by, since.
                return browser.execute_script(
                    "const f = document.getElementById('fleet');"
                    "if (!f || f.hidden) return null;"
                    "return [...document.querySelectorAll('#fleet-symbols tbody tr')]"
                    ".map(r => [...r.cells].map(c => c.textContent));"
                )

            rows = wait_until(lambda: (r := fleet_rows()) and len(r) == 2 and r, 30,
                              "the fleet in the health panel")  # fmt: skip
            assert {r[0] for r in rows} == {"AAPL", "MSFT"}, rows
            assert all(r[1].startswith("member-") and r[2].endswith("UTC") for r in rows), rows
        shot = screenshots / "dashboard-wide.png"
        assert browser.save_screenshot(str(shot))

        # A phone: one column, nothing wider than the screen.
        browser.set_window_size(390, 844)
        wait_until(
            lambda: browser.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth"
            ),
            10,
            "the page to fit a phone-sized window",
        )
        assert browser.find_element("id", "chart").size["width"] <= 390
        assert browser.save_screenshot(str(screenshots / "dashboard-phone.png"))
        print(f"screenshots in {screenshots}")
    finally:
        browser.quit()
    assert shot.stat().st_size > 10_000
