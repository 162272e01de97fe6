"""python -m dashboard: the dashboard stage's entry point."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from common.logs import configure_logging
from common.settings import fail, parse_settings
from dashboard.settings import DashboardSettings, build_parser

# Named for the package: run with -m, this module's __name__ is "__main__".
logger = logging.getLogger("dashboard.main")


def main(argv: list[str] | None = None) -> int:
    settings, _ = parse_settings(DashboardSettings, build_parser(), argv)
    configure_logging(settings.log_level)
    # aiohttp logs every request at INFO; the dashboard's own lines are what matter.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from dashboard.server import Dashboard

    dashboard = Dashboard(settings)
    try:
        asyncio.run(_serve(dashboard))
    except OSError as e:
        fail("python -m dashboard", f"cannot listen on {settings.host}:{settings.port}: {e}")
    return 0


async def _serve(dashboard) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopper(stop, signum))
    await dashboard.serve(stop)


def _stopper(stop: asyncio.Event, signum: int):
    def request_stop() -> None:
        logger.info("signal=%s: closing live streams, then stopping", signum)
        stop.set()

    return request_stop


if __name__ == "__main__":
    sys.exit(main())
