"""The live feed: ticks from Kafka, fanned out to every open page as Server-Sent Events.

A consumer thread of the dashboard's own group reads the ticks topic from its end (a dashboard
shows what happens now; what it missed is in Cassandra). Ticks are handed to the event loop,
which collects them and, at most every FLUSH_S, sends each client one event: the newest price of
every symbol that changed, plus every tick of the symbol that client charts (the page builds the
current candle from those). Each event is encoded once per symbol, not once per client, so the
cost of a flush grows with the number of clients only by a socket write each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.contract import ContractError, Tick, now_ms
from common.polling import Backoff, poll_paced
from common.topics import subscribe_when_ready

logger = logging.getLogger(__name__)

FLUSH_S = 0.1
# A client that has not drained this many events is too slow: it is dropped, and its page
# reconnects (EventSource does so by itself) and reloads what it missed from the API.
CLIENT_QUEUE = 64
# The most ticks of the charted symbol sent in one event; a faster stream is still summed
# correctly by the page because each event also carries the newest price.
MAX_TICKS_PER_EVENT = 500


@dataclass(eq=False)  # each client is itself: kept in a set by identity
class Client:
    symbol: str | None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: bool = False


class Hub:
    """Fan-out of ticks to live clients; lives on the event loop's thread."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self._latest: dict[str, Tick] = {}
        self._by_symbol: dict[str, list[Tick]] = {}
        self.ticks_received = 0
        self.last_tick_at_ms: int | None = None
        self.dropped_clients = 0

    def add(self, symbol: str | None) -> Client:
        client = Client(symbol)
        self.clients.add(client)
        return client

    def remove(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, ticks: list[Tick]) -> None:
        """Called on the loop (via call_soon_threadsafe) with a batch from the consumer."""
        self.ticks_received += len(ticks)
        self.last_tick_at_ms = now_ms()
        for t in ticks:
            seen = self._latest.get(t.symbol)
            if seen is None or (t.ts, t.seq) >= (seen.ts, seen.seq):
                self._latest[t.symbol] = t
            self._by_symbol.setdefault(t.symbol, []).append(t)

    def flush(self) -> int:
        """Send what arrived since the last flush; returns the number of events queued."""
        if not self._latest:
            return 0
        latest = [[t.symbol, t.price, t.ts, t.seq, t.volume] for t in self._latest.values()]
        by_symbol = self._by_symbol
        self._latest, self._by_symbol = {}, {}
        common = json.dumps({"latest": latest, "sent": now_ms()}, separators=(",", ":"))
        encoded: dict[str | None, bytes] = {None: _event("prices", common)}
        sent = 0
        for client in list(self.clients):
            key = client.symbol if client.symbol in by_symbol else None
            if key not in encoded:
                ticks = sorted(by_symbol[key], key=lambda t: (t.ts, t.seq))[-MAX_TICKS_PER_EVENT:]
                body = json.dumps(
                    {
                        "latest": latest,
                        "sent": now_ms(),
                        "symbol": key,
                        "ticks": [[t.ts, t.price, t.volume] for t in ticks],
                    },
                    separators=(",", ":"),
                )
                encoded[key] = _event("prices", body)
            try:
                client.queue.put_nowait(encoded[key])
                sent += 1
            except asyncio.QueueFull:
                client.dropped = True
                self.dropped_clients += 1
                self.clients.discard(client)
                # Wakes the client's writer so it ends the response.
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.get_nowait()
                client.queue.put_nowait(b"")
        return sent


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


class TickFeed:
    """A Kafka consumer thread feeding a Hub; started and stopped by the server."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group: str,
        deliver: Callable[[list[Tick]], None],
    ):
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._group = group
        self._deliver = deliver
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.running = False
        self.error: str | None = None
        self.refused = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tick-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        # Reconnects until stopped: Kafka being away is something the health panel shows, not
        # a reason for the page to die.
        backoff = Backoff(initial_s=2.0, maximum_s=15.0)
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception as e:  # noqa: BLE001 - any client failure: report, retry
                self.running = False
                self.error = f"{type(e).__name__}: {e}"
                delay = backoff.next()
                logger.warning("live feed failed, retrying in %.0fs: %s", delay, self.error)
                self._stop.wait(delay)
            else:
                backoff.reset()

    def _consume(self) -> None:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            auto_offset_reset="latest",
            enable_auto_commit=True,
            # The broker answers a fetch as soon as one record is there (fetch_min_bytes 1):
            # this is only how long an idle fetch waits, so it costs no latency, and at 50 ms
            # an idle dashboard sent 20 fetches a second.
            fetch_max_wait_ms=500,
            max_poll_records=5000,
            # Committed often so that the health panel's lag for this group means something.
            auto_commit_interval_ms=1000,
        )

        class FromTheEnd(ConsumerRebalanceListener):
            # A live view starts at now, whatever this group committed before.
            def on_partitions_assigned(self, assigned: Any) -> None:
                if assigned:
                    consumer.seek_to_end(*assigned)

            def on_partitions_revoked(self, revoked: Any) -> None:
                pass

        try:
            if not subscribe_when_ready(consumer, [self._topic], self._stop, FromTheEnd()):
                return
            while not self._stop.is_set():
                batches = poll_paced(consumer, 200, self._stop)
                self.running = True
                self.error = None
                ticks: list[Tick] = []
                for records in batches.values():
                    for record in records:
                        try:
                            ticks.append(Tick.from_record(record.key, record.value))
                        except ContractError:
                            # Storage dead-letters it; the page just does not show it.
                            self.refused += 1
                if ticks:
                    self._deliver(ticks)
        finally:
            self.running = False
            consumer.close()


async def flush_forever(hub: Hub, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        hub.flush()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, FLUSH_S - (time.monotonic() - started)))
