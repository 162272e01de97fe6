"""A report on a service for the health panel, worked out on a thread of its own (the clients'
calls block) and kept for CACHE_S: a hundred open pages cost the service one probe per
interval, not a hundred, and concurrent requests share the probe in flight."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

CACHE_S = 2.0


class CachedProbe:
    """Subclasses give `_measure` (the report; it raises when the service is away) and
    `_drop_clients` (closing them, so that the next probe starts afresh)."""

    # The service, as the error says it: "Kafka did not answer: ...".
    service = "the service"

    def __init__(self) -> None:
        self._lock = threading.Lock()
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
            self._drop_clients()

    def _probe(self) -> dict[str, Any]:
        with self._lock:
            try:
                return {"ok": True, **self._measure()}
            except Exception as e:  # noqa: BLE001 - the service away: say so, try afresh next time
                logger.warning("%s probe failed: %s: %s", self.service, type(e).__name__, e)
                self._drop_clients()
                why = f"{type(e).__name__}: {e}"
                return {"ok": False, "error": f"{self.service} did not answer: {why}"}

    def _measure(self) -> dict[str, Any]:
        raise NotImplementedError

    def _drop_clients(self) -> None:
        raise NotImplementedError
