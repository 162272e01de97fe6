"""The fleet of producers for the health panel: its members, who holds which symbol since when,
and the recent handovers, read from ZooKeeper (common.fleet) on a thread of its own and kept
for CACHE_S, like the Kafka probe beside it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from common.contract import now_ms
from common.fleet import SymbolStore, connect, view

logger = logging.getLogger(__name__)

CACHE_S = 2.0
# A page waits on this probe: ZooKeeper away costs it this long at most, once per CACHE_S.
_CONNECT_TIMEOUT_S = 2.0


class FleetProbe:
    def __init__(self, coordinator: str, chroot: str):
        self._coordinator = coordinator
        self._chroot = chroot
        self._lock = threading.Lock()
        self._client: Any = None
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._inflight: asyncio.Future | None = None

    async def report(self) -> dict[str, Any]:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.get_running_loop().run_in_executor(None, self._probe)
        result = await asyncio.shield(self._inflight)
        self._cached = (time.monotonic(), result)
        return result

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.stop()
                self._client.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken client
                pass
        self._client = None

    def _probe(self) -> dict[str, Any]:
        with self._lock:
            try:
                if self._client is None:
                    self._client = connect(self._coordinator, self._chroot,
                                           start_timeout_s=_CONNECT_TIMEOUT_S)  # fmt: skip
                return {"ok": True, **view(SymbolStore(self._client), now_ms())}
            except Exception as e:  # noqa: BLE001 - ZooKeeper away: say so, try afresh next time
                logger.warning("fleet probe failed: %s: %s", type(e).__name__, e)
                self._drop()
                return {"ok": False, "error": f"ZooKeeper did not answer: {type(e).__name__}: {e}"}
