"""The dashboard's reads from Cassandra: prepared statements, awaited from the event loop.

The driver runs requests on its own I/O thread; each ResponseFuture is bridged to an asyncio
future, so a slow query never blocks the page or the live feed. Statements are prepared once at
start; the keyspace name is checked by the settings (identifiers cannot be bind markers).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from common.buckets import bar_buckets
from common.settings import KEYSPACE_PATTERN
from dashboard.params import DAY_MS, TICK_DAYS_BACK, BarsQuery, TicksQuery, days_between

logger = logging.getLogger(__name__)

# A dashboard reads what is there: one replica answering is enough, and cheaper.
REQUEST_TIMEOUT_S = 5.0
_TUPLES = "tuples"
# Statements whose rows are read as plain tuples (the bulk reads).
_AS_TUPLES = {"bars", "history"}


class StoreUnavailable(RuntimeError):
    """Cassandra did not answer; the API turns this into a 503 that says so."""


def _ms(value: Any) -> int | None:
    # The driver returns timestamps as naive datetimes in UTC; its Date as days since epoch.
    if value is None:
        return None
    from datetime import timezone

    return int(value.replace(tzinfo=timezone.utc).timestamp() * 1000)


class Store:
    def __init__(
        self, hosts: tuple[str, ...], port: int, keyspace: str, consistency: str = "local_quorum"
    ):
        if not KEYSPACE_PATTERN.match(keyspace):
            raise ValueError(f"keyspace name {keyspace!r} is not [a-z][a-z0-9_]{{0,47}}")
        self._hosts = hosts
        self._port = port
        self._keyspace = keyspace
        self._consistency = consistency
        self._cluster: Any = None
        self._session: Any = None
        self._statements: dict[str, Any] = {}
        # (symbol, day) -> the day's first price; it never changes once the day has one.
        self._day_open: dict[tuple[str, int], float] = {}

    def connect(self) -> None:
        """Connect and prepare (blocking: called once before serving, or from a thread)."""
        from cassandra.query import tuple_factory

        from common.cql import build_cluster, execution_profile

        tuples = execution_profile(self._consistency, REQUEST_TIMEOUT_S, row_factory=tuple_factory)
        cluster = build_cluster(
            self._hosts,
            self._port,
            self._consistency,
            request_timeout_s=REQUEST_TIMEOUT_S,
            profiles={_TUPLES: tuples},
        )
        self._cluster = cluster  # closed by close() if preparing fails below
        session = cluster.connect()
        ks = self._keyspace
        # Only the keyspace is formatted in (checked above); every value is a bind marker.
        queries = {
            "latest": f"SELECT symbol, price, volume, ts, seq, source FROM {ks}.latest_prices",  # noqa: S608
            # Times as epoch ms from the node, and rows as plain tuples: a day of 1-minute bars
            # is 1,440 rows, and converting datetimes and named tuples was most of its cost.
            "bars": f"SELECT toUnixTimestamp(window_start), open, high, low, close, vwap, volume, count "  # noqa: S608, E501
            f"FROM {ks}.aggregates WHERE symbol = ? AND window_ms = ? AND day = ? "
            "AND window_start >= ? AND window_start < ? ORDER BY window_start ASC",
            "history": f"SELECT toUnixTimestamp(start), open, high, low, close, volume "  # noqa: S608
            f"FROM {ks}.bars WHERE symbol = ? AND interval = ? AND bucket = ? "
            "AND start >= ? AND start < ? ORDER BY start ASC",
            "ticks": f"SELECT ts, seq, price, volume, source FROM {ks}.ticks "  # noqa: S608
            "WHERE symbol = ? AND day = ? LIMIT ?",
            "first_tick": f"SELECT price FROM {ks}.ticks WHERE symbol = ? AND day = ? "  # noqa: S608
            "ORDER BY ts ASC, seq ASC LIMIT 1",
            "ping": "SELECT release_version FROM system.local",
        }
        self._statements = {name: session.prepare(q) for name, q in queries.items()}
        # Only now is the store usable: until every statement is prepared, requests get a 503.
        self._session = session
        logger.info("cassandra ready hosts=%s keyspace=%s", ",".join(self._hosts), ks)

    @property
    def connected(self) -> bool:
        return self._session is not None

    def close(self) -> None:
        cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None:
            cluster.shutdown()

    async def _execute(self, name: str, params: tuple = ()) -> list[Any]:
        """All rows of a prepared statement (every page), without blocking the loop."""
        if self._session is None:
            raise StoreUnavailable("not connected to Cassandra yet")
        from cassandra import DriverException
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, NoHostAvailable

        loop = asyncio.get_running_loop()
        rows: list[Any] = []
        try:
            response = self._session.execute_async(
                self._statements[name],
                params,
                execution_profile=_TUPLES if name in _AS_TUPLES else EXEC_PROFILE_DEFAULT,
            )
            while True:
                done: asyncio.Future = loop.create_future()
                response.add_callbacks(
                    lambda result, f=done: loop.call_soon_threadsafe(_settle, f, result, None),
                    lambda error, f=done: loop.call_soon_threadsafe(_settle, f, None, error),
                )
                rows.extend(await done)
                if not response.has_more_pages:
                    return rows
                response.start_fetching_next_page()
        except (NoHostAvailable, DriverException, OSError) as e:
            raise StoreUnavailable(f"Cassandra did not answer: {e}") from e

    async def ping(self) -> str:
        rows = await self._execute("ping")
        return rows[0].release_version if rows else "unknown"

    async def latest(self) -> list[dict[str, Any]]:
        rows = await self._execute("latest")
        found = [
            {
                "symbol": r.symbol,
                "price": r.price,
                "volume": r.volume,
                "ts": _ms(r.ts),
                "seq": r.seq,
                "source": r.source,
            }
            for r in rows
            if r.price is not None and r.ts is not None
        ]
        opens = await asyncio.gather(*(self._open_of_day(p["symbol"], p["ts"]) for p in found))
        for price, day_open in zip(found, opens, strict=True):
            price["day_open"] = day_open
            price["change"] = None if day_open is None else price["price"] - day_open
            price["change_pct"] = (
                None if not day_open else (price["price"] - day_open) / day_open * 100
            )
        return sorted(found, key=lambda p: p["symbol"])

    async def _open_of_day(self, symbol: str, ts: int) -> float | None:
        """The first price of the UTC day of `ts`: what a day's change is measured from."""
        from cassandra.util import Date

        day = ts // DAY_MS
        cached = self._day_open.get((symbol, day))
        if cached is not None:
            return cached
        rows = await self._execute("first_tick", (symbol, Date(day)))
        if not rows:
            return None
        self._day_open[(symbol, day)] = rows[0].price
        return rows[0].price

    async def bars(self, q: BarsQuery) -> list[tuple]:
        """Rows of BAR_FIELDS, oldest first (tuples: dashboard.encode writes them as JSON)."""
        from cassandra.util import Date

        days = days_between(q.start_ms, q.end_ms)
        parts = await asyncio.gather(
            *(
                self._execute("bars", (q.symbol, q.window_ms, Date(d), q.start_ms, q.end_ms))
                for d in days
            )
        )
        return [r for rows in parts for r in rows]

    async def history(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[tuple]:
        """The source's bars (t, open, high, low, close, volume) in [start, end), oldest first."""
        from cassandra.util import Date

        buckets = bar_buckets(interval, start_ms, end_ms)[::-1]
        parts = await asyncio.gather(
            *(
                self._execute("history", (symbol, interval, Date(b), start_ms, end_ms))
                for b in buckets
            )
        )
        return [r for rows in parts for r in rows]

    async def ticks(self, q: TicksQuery, now_ms: int) -> list[dict[str, Any]]:
        from cassandra.util import Date

        found: list[dict[str, Any]] = []
        today = now_ms // DAY_MS
        # Newest day first; ticks within a day come newest first (the clustering order).
        for day in range(today + 1, today - TICK_DAYS_BACK, -1):
            left = q.last - len(found)
            if left <= 0:
                break
            rows = await self._execute("ticks", (q.symbol, Date(day), left))
            found.extend(
                {"ts": _ms(r.ts), "seq": r.seq, "price": r.price, "volume": r.volume,
                 "source": r.source}
                for r in rows
            )  # fmt: skip
        return found


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
