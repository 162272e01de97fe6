"""The dashboard's web server (aiohttp): the page, its JSON API and the live event stream.

Every API parameter is checked by dashboard.params before a query runs: a refused request is a
400 whose JSON names the problem; Cassandra not answering is a 503 that says so; anything else
unexpected is logged and answered with a 500 that carries no internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from common.contract import now_ms
from common.polling import Backoff
from common.settings import format_duration
from dashboard import candles, params
from dashboard.encode import bars_json, candles_json
from dashboard.fleet import FleetProbe
from dashboard.health import HealthProbe
from dashboard.live import Hub, TickFeed, flush_forever
from dashboard.params import ParamError
from dashboard.settings import DashboardSettings
from dashboard.store import Store, StoreUnavailable

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
KEEPALIVE_S = 15.0
# Each open page is a coroutine and a socket: bounded, so that a flood cannot exhaust either.
MAX_LIVE_CLIENTS = 1000
_RECONNECT_S = 2.0


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, dumps=_dumps)


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ParamError as e:
        return _error(400, str(e))
    except StoreUnavailable as e:
        return _error(503, str(e))
    except web.HTTPException as e:
        if e.status >= 400 and request.path.startswith("/api/"):
            return _error(e.status, e.reason)
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("unexpected error path=%s", request.path)
        return _error(500, "internal error (logged by the dashboard)")


class Dashboard:
    """The application and its parts; construct, then `await serve(stop)`."""

    def __init__(self, settings: DashboardSettings):
        self.settings = settings
        self.store = Store(
            settings.cassandra_hosts,
            settings.cassandra_port,
            settings.keyspace,
            settings.consistency,
        )
        self.hub = Hub()
        self.feed = TickFeed(
            settings.bootstrap_servers, settings.ticks_topic, settings.consumer_group, self._deliver
        )
        self.health = HealthProbe(
            settings.bootstrap_servers,
            settings.ticks_topic,
            settings.aggregates_topic,
            settings.dead_letter_topic,
            settings.consumer_group,
        )
        self.fleet = (
            FleetProbe(settings.coordinator, settings.fleet_chroot)
            if settings.coordinator
            else None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[errors_as_json])
        app.router.add_get("/", self.index)
        app.router.add_get("/api/config", self.config)
        app.router.add_get("/api/latest", self.latest)
        app.router.add_get("/api/bars", self.bars)
        app.router.add_get("/api/candles", self.candles)
        app.router.add_get("/api/ticks", self.ticks)
        app.router.add_get("/api/health", self.health_report)
        app.router.add_get("/api/live", self.live)
        app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
        return app

    # --- the page and the API ----------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        params.page_params(request.query.items())
        return web.FileResponse(STATIC_DIR / "index.html")

    async def config(self, request: web.Request) -> web.Response:
        params.no_params(request.query.items())
        settings = self.settings
        return web.json_response(
            {
                "windows": [{"ms": w, "label": format_duration(w)} for w in settings.windows_ms],
                # Candle sizes /api/candles also serves (from history and rolled-up minutes).
                "chart_windows": [
                    {"ms": w, "label": format_duration(w)}
                    for w in sorted({*settings.windows_ms, *params.CHART_INTERVALS_MS})
                ],
                "default_window_ms": settings.default_window_ms,
                "max_bars": params.MAX_BARS,
                "max_span_ms": params.MAX_SPAN_MS,
                "max_daily_span_ms": params.MAX_DAILY_SPAN_MS,
            },
            dumps=_dumps,
        )

    async def latest(self, request: web.Request) -> web.Response:
        params.no_params(request.query.items())
        prices = await self.store.latest()
        return web.json_response({"as_of": now_ms(), "prices": prices}, dumps=_dumps)

    async def bars(self, request: web.Request) -> web.Response:
        q = params.bars_query(
            request.query.items(),
            windows_ms=self.settings.windows_ms,
            default_window_ms=self.settings.default_window_ms,
            now_ms=now_ms(),
        )
        rows = await self.store.bars(q)
        head = _dumps(
            {
                "symbol": q.symbol,
                "window_ms": q.window_ms,
                "window": format_duration(q.window_ms),
                "from": q.start_ms,
                "to": q.end_ms,
            }
        )
        body = f'{head[:-1]},"bars":{bars_json(rows)}}}'
        return web.Response(text=body, content_type="application/json")

    async def candles(self, request: web.Request) -> web.Response:
        """The chart's series: live aggregates joined with the source's history (see
        dashboard.candles); `window` may be 1d too."""
        q = params.candles_query(
            request.query.items(),
            windows_ms=self.settings.windows_ms,
            default_window_ms=self.settings.default_window_ms,
            now_ms=now_ms(),
        )
        live = await self._aggregates(q.symbol, q.interval_ms, q.start_ms, q.end_ms)
        bar_interval = candles.HISTORY_INTERVAL.get(q.interval_ms)
        history = (
            candles.from_history(
                await self.store.history(q.symbol, bar_interval, q.start_ms, q.end_ms)
            )
            if bar_interval
            else []
        )
        rolled: list[tuple] = []
        if q.interval_ms > candles.MINUTE_MS and bar_interval:
            start = max(q.start_ms, q.end_ms - candles.ROLL_UP_SPAN_MS)
            start -= start % q.interval_ms
            minutes = candles.join(
                await self._aggregates(q.symbol, candles.MINUTE_MS, start, q.end_ms),
                candles.from_history(await self.store.history(q.symbol, "1m", start, q.end_ms)),
            )
            rolled = candles.roll_up(minutes, q.interval_ms)
        rows = candles.join(live, history, rolled)
        head = _dumps({"symbol": q.symbol, "window_ms": q.interval_ms,
                       "window": format_duration(q.interval_ms), "from": q.start_ms,
                       "to": q.end_ms})  # fmt: skip
        return web.Response(text=f'{head[:-1]},"candles":{candles_json(rows)}}}',
                            content_type="application/json")  # fmt: skip

    async def _aggregates(self, symbol: str, window_ms: int, start: int, end: int) -> list:
        if window_ms not in self.settings.windows_ms:
            return []
        rows = await self.store.bars(params.BarsQuery(symbol, window_ms, start, end))
        return candles.from_aggregates(rows)

    async def ticks(self, request: web.Request) -> web.Response:
        q = params.ticks_query(request.query.items())
        ticks = await self.store.ticks(q, now_ms())
        return web.json_response({"symbol": q.symbol, "ticks": ticks}, dumps=_dumps)

    async def health_report(self, request: web.Request) -> web.Response:
        params.no_params(request.query.items())
        cassandra: dict[str, Any]
        try:
            cassandra = {"ok": True, "version": await self.store.ping()}
        except StoreUnavailable as e:
            cassandra = {"ok": False, "error": str(e)}
        kafka = await self.health.report()
        live = {
            "clients": len(self.hub.clients),
            "feed_running": self.feed.running,
            "feed_error": self.feed.error,
            "ticks_received": self.hub.ticks_received,
            "last_tick_at": self.hub.last_tick_at_ms,
            "refused": self.feed.refused,
            "dropped_clients": self.hub.dropped_clients,
        }
        ok = cassandra["ok"] and kafka["ok"] and self.feed.running
        body = {
            "status": "ok" if ok else "degraded",
            "checked_at": now_ms(),
            "cassandra": cassandra,
            "kafka": kafka,
            "live": live,
            # The producers' fleet (null: the dashboard was given no ZooKeeper).
            "fleet": None if self.fleet is None else await self.fleet.report(),
        }
        return web.json_response(body, dumps=_dumps)

    async def live(self, request: web.Request) -> web.StreamResponse:
        q = params.live_query(request.query.items())
        if len(self.hub.clients) >= MAX_LIVE_CLIENTS:
            return _error(503, f"{MAX_LIVE_CLIENTS} live pages are open already; try again later")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        # From here on the status line is sent: errors end the stream instead of answering.
        client = self.hub.add(q.symbol)
        try:
            hello = _dumps({"symbol": q.symbol, "server_time": now_ms()})
            await response.write(f"retry: 2000\nevent: hello\ndata: {hello}\n\n".encode())
            while not self._stopping:
                try:
                    data = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    data = b": keep-alive\n\n"
                if not data:  # dropped as too slow, or the server is stopping
                    break
                await response.write(data)
        except ConnectionError:
            pass  # the page went away
        except Exception:
            logger.exception("live stream failed symbol=%s", q.symbol)
        finally:
            self.hub.remove(client)
        return response

    # --- running -----------------------------------------------------------------------------

    def _deliver(self, ticks: list) -> None:
        # Called on the consumer thread: hand the batch to the loop's thread.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.hub.publish, ticks)

    async def _connect_store(self, stop: asyncio.Event) -> None:
        """Connect to Cassandra, retrying until it answers: the page works before it does."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(initial_s=1.0, maximum_s=_RECONNECT_S)
        while not stop.is_set():
            try:
                await loop.run_in_executor(None, self.store.connect)
                return
            except Exception as e:  # noqa: BLE001 - not up yet, or the keyspace is missing
                delay = backoff.next()
                logger.warning("cassandra not ready, retrying in %.0fs: %s: %s",
                               delay, type(e).__name__, e)  # fmt: skip
                self.store.close()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def serve(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port, shutdown_timeout=5.0)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self.feed.start()
        tasks = [
            asyncio.create_task(self._connect_store(stop)),
            asyncio.create_task(flush_forever(self.hub, stop)),
        ]
        logger.info("dashboard serving url=%s", self.settings.url)
        if started is not None:
            started.set()
        try:
            await stop.wait()
        finally:
            logger.info("stopping: closing %d live streams", len(self.hub.clients))
            self._stopping = True
            for client in list(self.hub.clients):
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.put_nowait(b"")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.feed.stop)
            await loop.run_in_executor(None, self.health.close)
            if self.fleet is not None:
                await loop.run_in_executor(None, self.fleet.close)
            self.store.close()
            logger.info("dashboard stopped")
