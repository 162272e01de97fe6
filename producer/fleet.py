"""This producer as a member of the fleet (the znodes: common/fleet.py): which symbols it fetches.

A member fetches and publishes only the symbols whose lock it holds. It rebalances when a watch
fires (members, owners or the list changed): it lets go of symbols no longer listed and of any
beyond its share, ceil(symbols / members), then takes free symbols up to its share. A lock is
taken by creating its znode, so two members never both get it.

Fencing: a member publishes only while its session is connected. kazoo suspends the connection
when the server has not answered for two thirds of the session timeout, before the server can
expire the session and free the locks for others, so a cut-off member stops first. A process
paused (SIGSTOP) past its timeout is another matter: it resumes with kazoo still saying
"connected" until its connection thread runs. So the runner asks the server whether the session
stands (`fenced_round`, one round trip) before each polled round and, streaming, before the first
tick after any second without asking; a symbol let go of is checked per tick (`publishable`).
What remains is what was handed to the Kafka client before the pause (sent with its earlier
timestamps). Measured (tests/integration/producer/test_fleet.py): a member paused past a 4 s
session published 0 ticks under its old name after it resumed; 44 without the check.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from common.fleet import MEMBERS, OWNERS, SYMBOLS, SymbolListError, SymbolStore, share

logger = logging.getLogger(__name__)

# How long a fence check waits for ZooKeeper's answer before publishing nothing this round.
_FENCE_S = 2.0
# Between a member ceasing to publish a symbol and its lock going (see Fleet._release).
_HANDOVER_GRACE_S = 0.2
# How often a member writes its newest tick per symbol into its znode (for `symbols list`).
_INFO_EVERY_S = 5.0


class Fleet:
    """This producer's membership: which symbols it holds now, kept up to date by watches."""

    def __init__(self, client, source: str):
        self._client = client
        self._store = SymbolStore(client)
        self._source = source
        # Set whenever what this member may publish changes (its symbols, or its session).
        self.changed = threading.Event()
        # symbol -> the newest tick's event time this member published (the runner writes it);
        # shown by `symbols list`, from the member's znode, written every few seconds.
        self.last_ticks: dict[str, int] = {}
        self._info_written = 0.0
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._connected = True
        self._held: set[str] = set()
        # What the runner may publish, checked per tick: the held symbols while the session is
        # connected, otherwise none. Replaced whole (never changed in place), so reading it
        # needs no lock.
        self.publishable: frozenset[str] = frozenset()
        self._symbols: tuple[str, ...] = ()
        self.name = ""
        self._started = time.time()
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    def start(self, symbols: tuple[str, ...] | None, default: tuple[str, ...] = ()) -> None:
        """Join: write `symbols` as the list when given (a user's --symbols; otherwise the list
        stays as the fleet has it, or `default` when there is none yet), register, watch."""
        if symbols is not None:
            self._store.change(lambda _current: symbols)
        elif self._store.read_raw() is None:
            self._store.change(lambda current: current or default)
        self._register()
        self._client.add_listener(self._on_state)
        self._client.ChildrenWatch(MEMBERS, self._poke)
        self._client.ChildrenWatch(OWNERS, self._poke)
        self._client.DataWatch(SYMBOLS, self._poke)
        self._thread.start()

    def owned(self) -> tuple[str, ...]:
        """The symbols to publish now, in list order; none while the session is not connected."""
        publishable = self.publishable
        return tuple(s for s in self._symbols if s in publishable)

    def fenced_round(self) -> tuple[str, ...]:
        """owned(), after asking the server that this member's session still stands (one round
        trip): a producer resumed after a pause learns it lost its locks before it publishes."""
        from kazoo.exceptions import KazooException
        from kazoo.handlers.threading import KazooTimeoutError

        if not self.publishable:
            return ()
        try:
            # Bounded: while the connection is down the answer waits for it, and a stop request
            # must not.
            found = self._client.exists_async(f"{MEMBERS}/{self.name}").get(timeout=_FENCE_S)
        except (KazooException, KazooTimeoutError):
            return ()
        if found is None:
            self._lost()
            return ()
        return self.owned()

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        self._thread.join(10)
        self._client.remove_listener(self._on_state)
        self._client.stop()
        self._client.close()

    # -- what the watches and the session tell

    def _poke(self, *_args: object) -> bool:
        self._wake.set()
        return not self._closing.is_set()  # False ends the watch

    def _on_state(self, state: str) -> None:
        # Runs on kazoo's connection thread: no ZooKeeper calls here, only flags.
        with self._lock:
            self._connected = state == "CONNECTED"
            if state == "LOST":
                self._held.clear()
            self._refresh()
        if state != "CONNECTED":
            logger.warning("zookeeper session %s: publishing nothing until it is back", state)
            self.changed.set()
        self._wake.set()

    def _refresh(self) -> None:
        """publishable from held and the session (called with the lock held)."""
        self.publishable = frozenset(self._held) if self._connected else frozenset()

    def _lost(self) -> None:
        with self._lock:
            self._held.clear()
            self._refresh()
        self.changed.set()
        self._wake.set()

    # -- the rebalancing thread

    def _run(self) -> None:
        from kazoo.exceptions import KazooException

        while not self._closing.is_set():
            self._wake.wait(_INFO_EVERY_S)
            if self._closing.is_set():
                return
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                if woken:
                    self._rebalance()
                self._write_info()
            except KazooException as e:
                logger.warning("rebalance failed, trying again: %r", e)
                time.sleep(0.5)
                self._wake.set()

    def _info(self) -> bytes:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                           "source": self._source, "started": self._started,
                           "last_ticks": dict(self.last_ticks)}).encode()  # fmt: skip

    def _write_info(self) -> None:
        """The member's znode again, with its newest tick per symbol, every few seconds."""
        if time.monotonic() - self._info_written >= _INFO_EVERY_S and self.last_ticks:
            self._info_written = time.monotonic()
            self._client.set(f"{MEMBERS}/{self.name}", self._info())

    def _register(self) -> None:
        path = self._client.create(f"{MEMBERS}/member-", self._info(), ephemeral=True,
                                   sequence=True)  # fmt: skip
        self.name = path.rsplit("/", 1)[-1]
        logger.info("joined the fleet as %s", self.name)

    def _read_list(self) -> tuple[str, ...]:
        try:
            found = self._store.read()
        except SymbolListError as e:
            logger.error("the symbols znode is malformed; keeping the last good list %s: %s",
                         ",".join(self._symbols) or "(none)", e)  # fmt: skip
            return self._symbols
        return () if found is None else found[0]

    def _rebalance(self) -> None:
        from kazoo.exceptions import NodeExistsError, NoNodeError

        if not self._client.connected:
            return
        if self._client.exists(f"{MEMBERS}/{self.name}") is None:
            self._register()  # a new session after the old one expired
        symbols = self._read_list()
        members = self._client.get_children(MEMBERS)
        owners = self._store.owners()
        held = {s for s, owner in owners.items() if owner == self.name}
        limit = share(len(symbols), len(members))
        keep = [s for s in symbols if s in held][:limit]
        self._release(held - set(keep))
        for symbol in symbols:
            if len(keep) >= limit:
                break
            if symbol in owners:
                continue
            try:
                self._client.create(f"{OWNERS}/{symbol}", self.name.encode(), ephemeral=True)
                keep.append(symbol)
                logger.info("holding symbol=%s", symbol)
            except (NodeExistsError, NoNodeError):
                continue
        with self._lock:
            changed = set(keep) != self._held or symbols != self._symbols
            self._held, self._symbols = set(keep), symbols
            self._refresh()
        if changed:
            logger.info("fleet members=%d share=%d holding=%s", len(members), limit,
                        ",".join(s for s in symbols if s in self._held) or "(none)")  # fmt: skip
            self.changed.set()

    def _release(self, symbols: set[str]) -> None:
        """Stop publishing them, then let go of their locks: the runner checks each tick against
        `publishable`, and a tick it was handing over as that changed is sent within the grace,
        before another member can hold the symbol."""
        from kazoo.exceptions import NoNodeError

        if not symbols:
            return
        with self._lock:
            self._held -= symbols
            self._refresh()
        self.changed.set()
        time.sleep(_HANDOVER_GRACE_S)
        for symbol in symbols:
            try:
                self._client.delete(f"{OWNERS}/{symbol}")
            except NoNodeError:
                pass
            logger.info("released symbol=%s", symbol)
