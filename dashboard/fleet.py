"""The fleet of producers for the health panel: its members, who holds which symbol since when,
and the recent handovers, read from ZooKeeper (common.fleet) like the Kafka probe beside it
(dashboard.probe)."""

from __future__ import annotations

from typing import Any

from common.contract import now_ms
from common.fleet import SymbolStore, connect, view
from dashboard.probe import CachedProbe

# A page waits on this probe: ZooKeeper away costs it this long at most, once per CACHE_S.
_CONNECT_TIMEOUT_S = 2.0


class FleetProbe(CachedProbe):
    service = "ZooKeeper"

    def __init__(self, coordinator: str, chroot: str):
        super().__init__()
        self._coordinator = coordinator
        self._chroot = chroot
        self._client: Any = None

    def _measure(self) -> dict[str, Any]:
        if self._client is None:
            self._client = connect(self._coordinator, self._chroot,
                                   start_timeout_s=_CONNECT_TIMEOUT_S)  # fmt: skip
        return view(SymbolStore(self._client), now_ms())

    def _drop_clients(self) -> None:
        if self._client is not None:
            try:
                self._client.stop()
                self._client.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken client
                pass
        self._client = None
