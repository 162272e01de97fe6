"""The fleet of producers as ZooKeeper holds it (kazoo): the znodes, the versioned symbol list,
who is a member and who holds which symbol. The producer's member side is producer/fleet.py; the
command line (`python -m producer symbols`) and the dashboard read and change it through here.

Under the chroot (default /stock-system):
- `producers/members/member-<seq>`: one ephemeral sequential znode per running producer, holding
  its host, pid, source, start time and newest tick per symbol (JSON). It goes with its session.
- `producers/symbols`: the symbol list, one versioned znode (JSON `{"symbols": [...]}`); changed
  by compare-and-set on its version, so two concurrent edits never lose one another.
- `producers/owners/<SYMBOL>`: the symbol's lock, an ephemeral znode holding its owner's member
  name; its creation time is when that member took the symbol.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.contract import ContractError, short, validate_symbol
from common.settings import FLEET_CHROOT

logger = logging.getLogger(__name__)

DEFAULT_CHROOT = FLEET_CHROOT.default
MEMBERS = "/producers/members"
SYMBOLS = "/producers/symbols"
OWNERS = "/producers/owners"
# A symbols znode is a short list; a larger one is refused before it is parsed.
MAX_LIST_BYTES = 256 * 1024


class SymbolListError(ValueError):
    """The symbols znode holds something that is not a list of valid symbols."""


def encode_symbols(symbols: Iterable[str]) -> bytes:
    return json.dumps({"symbols": [validate_symbol(s) for s in symbols]}).encode()


def decode_symbols(data: bytes | None) -> tuple[str, ...]:
    """The list a symbols znode holds; SymbolListError (its text bounded) for anything else."""
    if data is None or len(data) > MAX_LIST_BYTES:
        raise SymbolListError(f"not a symbol list: {0 if data is None else len(data)} bytes")
    try:
        body = json.loads(data)
        symbols = body["symbols"]
        if not isinstance(symbols, list):
            raise TypeError("symbols is not a list")
        return tuple(dict.fromkeys(validate_symbol(s) for s in symbols))
    except (ValueError, KeyError, TypeError, ContractError) as e:
        raise SymbolListError(
            f"not a symbol list ({type(e).__name__}: {short(str(e), 200)}): "
            f"{short(data.decode(errors='replace'), 200)!r}"
        ) from e


def share(symbols: int, members: int) -> int:
    """The most symbols one member may hold: spread evenly."""
    return math.ceil(symbols / members) if members else 0


@dataclass(frozen=True)
class Member:
    name: str
    host: str
    pid: int
    source: str
    started: float
    last_ticks: dict[str, int]


def connect(hosts: str, chroot: str = DEFAULT_CHROOT, session_timeout_s: float = 6.0,
            start_timeout_s: float = 15.0):  # fmt: skip
    """A started kazoo client under the chroot (created when missing)."""
    from kazoo.client import KazooClient

    root = KazooClient(hosts=hosts, timeout=start_timeout_s)
    try:
        root.start(timeout=start_timeout_s)
        root.ensure_path(chroot)
    finally:
        root.stop()
        root.close()
    client = KazooClient(hosts=hosts + chroot, timeout=session_timeout_s)
    try:
        client.start(timeout=start_timeout_s)
        for path in (MEMBERS, OWNERS):
            client.ensure_path(path)
    except BaseException:
        client.stop()
        client.close()
        raise
    return client


class SymbolStore:
    """The fleet as the command line sees it: the versioned list, the members, the owners."""

    def __init__(self, client):
        self._client = client

    def read_raw(self) -> bytes | None:
        from kazoo.exceptions import NoNodeError

        try:
            return self._client.get(SYMBOLS)[0]
        except NoNodeError:
            return None

    def read(self) -> tuple[tuple[str, ...], int] | None:
        """(symbols, version), or None when no list was ever written."""
        from kazoo.exceptions import NoNodeError

        try:
            data, stat = self._client.get(SYMBOLS)
        except NoNodeError:
            return None
        return decode_symbols(data), stat.version

    def change(self, edit: Callable[[tuple[str, ...]], Iterable[str]]) -> tuple[str, ...]:
        """Apply `edit` to the current list by compare-and-set, again if someone else wrote in
        between; a malformed list counts as empty. Returns the list written."""
        from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

        while True:
            try:
                data, stat = self._client.get(SYMBOLS)
            except NoNodeError:
                new = tuple(dict.fromkeys(edit(())))
                try:
                    self._client.create(SYMBOLS, encode_symbols(new), makepath=True)
                    return new
                except NodeExistsError:
                    continue
            try:
                current = decode_symbols(data)
            except SymbolListError as e:
                logger.warning("replacing a malformed symbol list: %s", e)
                current = ()
            new = tuple(dict.fromkeys(edit(current)))
            try:
                self._client.set(SYMBOLS, encode_symbols(new), version=stat.version)
                return new
            except BadVersionError:
                continue

    def members(self) -> dict[str, Member]:
        from kazoo.exceptions import NoNodeError

        found = {}
        for name in sorted(self._client.get_children(MEMBERS)):
            try:
                data, _ = self._client.get(f"{MEMBERS}/{name}")
                info = json.loads(data)
                found[name] = Member(name, info["host"], info["pid"], info["source"],
                                     info["started"], info.get("last_ticks", {}))  # fmt: skip
            except (NoNodeError, ValueError, KeyError, TypeError):
                continue  # gone meanwhile, or not one of ours
        return found

    def owners(self) -> dict[str, str]:
        """symbol -> the member holding its lock."""
        return {symbol: member for symbol, (member, _) in self.holders().items()}

    def holders(self) -> dict[str, tuple[str, int]]:
        """symbol -> (the member holding its lock, since when in epoch ms: the lock's creation)."""
        from kazoo.exceptions import NoNodeError

        found = {}
        for symbol in self._client.get_children(OWNERS):
            try:
                data, stat = self._client.get(f"{OWNERS}/{symbol}")
                found[symbol] = (data.decode(), stat.ctime)
            except NoNodeError:
                continue
        return found


# The handovers the dashboard shows: symbols taken by their holder this recently, newest first.
RECENT_MS = 10 * 60_000
MAX_RECENT = 20


def view(store: SymbolStore, now_ms: int) -> dict:
    """The fleet as the dashboard shows it: members, who holds each listed symbol since when,
    and the recent handovers (a symbol's lock taken within RECENT_MS)."""
    try:
        listed = store.read()
        symbols, version = listed if listed is not None else ((), None)
        error = None
    except SymbolListError as e:
        symbols, version, error = (), None, str(e)
    holders = store.holders()
    members = store.members()
    recent = sorted(((since, symbol, member) for symbol, (member, since) in holders.items()
                     if now_ms - since <= RECENT_MS), reverse=True)[:MAX_RECENT]  # fmt: skip
    return {
        "version": version,
        "list_error": error,
        "members": [
            {
                "name": m.name,
                "host": m.host,
                "pid": m.pid,
                "source": m.source,
                "started_ms": int(m.started * 1000),
                "holds": sorted(s for s, (owner, _) in holders.items() if owner == m.name),
            }
            for m in members.values()
        ],  # fmt: skip
        "symbols": [
            {
                "symbol": s,
                "member": holders.get(s, (None, 0))[0],
                "since_ms": holders.get(s, (None, None))[1],
            }
            for s in symbols
        ],  # fmt: skip
        "handovers": [{"at_ms": at, "symbol": s, "to": m} for at, s, m in recent],
    }
